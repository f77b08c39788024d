from typing import ClassVar

from services.common.settings import Settings


class AuditSettings(Settings):
    service: ClassVar[str] = "audit"

    # Checkpoints: the note's origin line and key name, and how often the head is signed.
    origin: str = "nrm-exchange/audit"
    key_name: str = "nrm-exchange-audit"
    checkpoint_interval_seconds: float = 300.0
    page_size_max: int = 500
