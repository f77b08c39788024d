from typing import ClassVar

from services.common.settings import Settings


class IdentitySettings(Settings):
    service: ClassVar[str] = "identity"

    token_ttl_seconds: int = 900
    """Lifetime of access tokens; a retired signing key stays published this long."""
    token_failures_per_client: int = 10
    """Failed authentications of one client id allowed per `token_failure_window_seconds`
    before `POST /oauth/token` answers it 429 (the allowance refills steadily)."""
    token_failures_per_address: int = 30
    """The same, per source address."""
    token_failure_window_seconds: float = 60.0
    """The period over which the failure allowances refill."""
