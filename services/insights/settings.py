from functools import cached_property
from typing import ClassVar

import yaml
from pydantic import Field, field_validator

from services.common.settings import Settings


class InsightsSettings(Settings):
    service: ClassVar[str] = "insights"

    k: int = Field(default=11, ge=2)
    """Smallest count published: smaller counts (and the percentiles of smaller groups) are
    suppressed, and enough other cells with them that none can be recomputed."""
    period_months: int = 3
    """Length of the calendar-aligned blocks periods are made of (1, 2, 3, 4, 6 or 12 months).
    A period starts and ends on block boundaries; a count over several blocks is published
    only where no block hides it (docs/statistics.md)."""
    max_period_months: int = Field(default=120, ge=1)
    """Longest period one question may cover."""
    coordinator_agency: str = "nrm-coordinator"
    """The agency whose supervisors may read statistics besides analysts."""
    release_epsilon: float = Field(default=1.0, gt=0)
    """Privacy-loss budget ε one open-data release spends (pure differential privacy, δ = 0),
    shared equally by its tables and its total."""
    epsilon_budget: float = Field(default=3.0, gt=0)
    """Total ε all releases of one year's data may spend; a release past it is refused."""
    release_confidence: float = Field(default=0.95, gt=0, lt=1)
    """Confidence at which each released table's accuracy is stated."""

    @field_validator("period_months")
    @classmethod
    def _divides_a_year(cls, value: int) -> int:
        if value not in (1, 2, 3, 4, 6, 12):
            raise ValueError("period_months must be 1, 2, 3, 4, 6 or 12")
        return value

    @cached_property
    def agency_types(self) -> dict[str, str]:
        """Agency id → type, from `<config_dir>/agencies.yaml` (the submitting agency type of a
        referral; agencies not listed count as `other`)."""
        path = self.config_dir / "agencies.yaml"
        if not path.is_file():
            return {}
        data = yaml.safe_load(path.read_text()) or {}
        return {str(a["id"]): str(a.get("type", "other")) for a in data.get("agencies", [])}
