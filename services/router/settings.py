from pathlib import Path
from typing import ClassVar

from services.common.settings import Settings

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "deploy" / "config" / "routing.yaml"


class RouterSettings(Settings):
    service: ClassVar[str] = "router"

    policy_file: Path | None = None  # default: routing.yaml in NRM_CONFIG_DIR

    @property
    def policy_path(self) -> Path:
        return self.policy_file or self.config_dir / "routing.yaml"
