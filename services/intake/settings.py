from typing import ClassVar

from services.common.settings import Settings


class IntakeSettings(Settings):
    service: ClassVar[str] = "intake"

    max_body_bytes: int = 64 * 1024
    page_size_max: int = 100
