from typing import ClassVar

from services.common.settings import Settings


class IdentitySettings(Settings):
    service: ClassVar[str] = "identity"

    token_ttl_seconds: int = 900
    """Lifetime of access tokens; a retired signing key stays published this long."""
