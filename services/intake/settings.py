import functools
from pathlib import Path
from typing import ClassVar

import yaml

from services.common.settings import Settings

# Agency types that may name other agencies implicated in a case (besides the submitter).
OVERSIGHT_TYPES = frozenset({"prosecutor", "coordinator"})


@functools.cache
def _of_types(path: Path, types: frozenset[str]) -> frozenset[str]:
    if not path.is_file():
        return frozenset()
    data = yaml.safe_load(path.read_text()) or {}
    return frozenset(str(a["id"]) for a in data.get("agencies", []) if a.get("type") in types)


class IntakeSettings(Settings):
    service: ClassVar[str] = "intake"

    page_size_max: int = 100
    """Largest page of `GET /v1/referrals`."""

    def overseers(self) -> frozenset[str]:
        """Agencies (prosecutors, the coordinator, by type in `agencies.yaml`) that may name
        agencies implicated in a referral routed to them."""
        return _of_types(self.config_dir / "agencies.yaml", OVERSIGHT_TYPES)
