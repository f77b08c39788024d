from typing import ClassVar

from pydantic import SecretStr

from services.common.settings import Settings


class ConsoleSettings(Settings):
    service: ClassVar[str] = "console"

    api_url: str | None = None
    """Where the console calls the services' public APIs (default: `auth_issuer`, the stack)."""
    client_id: str = "console"
    """The console's OpenID Connect client at identity (seeded by identity)."""
    client_secret: SecretStr | None = None
    """Its secret; unset, read from `<data_dir>/credentials.json` (written by `nrm up`)."""
    idle_timeout_seconds: float = 900.0
    """A console session unused this long is forgotten (the person signs in again)."""
    secure_cookies: bool | None = None
    """Mark the session cookie `Secure`; unset: when the console's address is https."""
    api_timeout_seconds: float = 15.0
    """How long a page waits for a service's API."""

    @property
    def api_base(self) -> str:
        return (self.api_url or self.auth_issuer).rstrip("/")
