from typing import ClassVar

from services.common.settings import Settings


class IdentitySettings(Settings):
    service: ClassVar[str] = "identity"

    token_ttl_seconds: int = 900
    """Lifetime of access tokens; a retired signing key stays published this long."""
    token_failures_per_client: int = 10
    """Failed authentications of one client id from one address allowed per
    `token_failure_window_seconds` before `POST /oauth/token` answers it 429 there (the
    allowance refills steadily)."""
    token_failures_per_address: int = 30
    """The same, per source address."""
    token_failure_window_seconds: float = 60.0
    """The period over which the failure allowances refill."""
    password_min_length: int = 12
    """Shortest password a person may have (common passwords are refused at any length)."""
    signin_failures_per_person: int = 5
    """Failed sign-ins (password or one-time code) of one username allowed per
    `signin_failure_window_seconds` before the sign-in page answers 429 for it; a browser in
    which the person signed in before has an allowance of its own (a device cookie)."""
    signin_failures_per_address: int = 50
    """The same, per source address."""
    signin_failure_window_seconds: float = 300.0
    """The period over which the sign-in failure allowances refill."""
    session_ttl_seconds: int = 8 * 3600
    """How long a person's sign-in at identity lasts (a working day)."""
    refresh_token_ttl_seconds: int = 8 * 3600
    """Lifetime of a person's refresh token (each use rotates it)."""
    authorization_code_ttl_seconds: int = 120
    """Lifetime of an authorization code."""
