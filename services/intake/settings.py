from typing import ClassVar

from pydantic import SecretStr

from services.common.settings import Settings


class IntakeSettings(Settings):
    service: ClassVar[str] = "intake"

    # {key id: URL-safe base64 of 32 bytes}. Unset: the embedded stack generates one key and
    # keeps it in $NRM_DATA_DIR/intake-master-keys.json (mode 600).
    master_keys: dict[str, SecretStr] = {}
    active_master_key: str | None = None
    max_body_bytes: int = 64 * 1024
    page_size_max: int = 100
