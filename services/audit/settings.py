from typing import ClassVar

from services.common.settings import Settings


class AuditSettings(Settings):
    service: ClassVar[str] = "audit"

    origin: str = "nrm-exchange/audit"
    """The origin line of checkpoint notes."""
    key_name: str = "nrm-exchange-audit"
    """The checkpoint key's name (in the verifier key and the note's signature line)."""
    checkpoint_interval_seconds: float = 300.0
    """How often the chain head is signed, when it moved."""
    missing_grace_seconds: float = 180.0
    """How long a gap in a source's event numbers may stay open (events of one source arrive
    out of order across partitions) before `verify` reports it in `missing` and is not ok."""
    page_size_max: int = 500
    """Largest page of `GET /v1/audit/events`."""
