from typing import ClassVar

from services.common.settings import Settings


class IntakeSettings(Settings):
    service: ClassVar[str] = "intake"

    page_size_max: int = 100
    """Largest page of `GET /v1/referrals`."""
