from pathlib import Path
from typing import ClassVar

from contracts.vocabulary import Urgency
from services.common.settings import Settings

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "deploy" / "config" / "routing.yaml"


class RouterSettings(Settings):
    service: ClassVar[str] = "router"

    policy_file: Path | None = None
    """The routing policy (default: `routing.yaml` in the configuration directory)."""

    deadlines: dict[Urgency, str] = {}
    """Replace the policy's acknowledgement deadlines, e.g. `{"routine": "30s"}` (demos, drills)."""

    identification: dict[str, str] = {}
    """Replace the policy's identification clocks, e.g. `{"reflection_period": "60s",
    "reflection_minimum": "60s"}` (demos, drills); checked like the file."""

    @property
    def policy_path(self) -> Path:
        return self.policy_file or self.config_dir / "routing.yaml"
