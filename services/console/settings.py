from typing import ClassVar

from pydantic import SecretStr

from services.common.routes import owner
from services.common.settings import Settings


class ConsoleSettings(Settings):
    service: ClassVar[str] = "console"

    api_url: str | None = None
    """Where the console calls the services' public APIs (default: `auth_issuer`, the stack or
    a proxy routing by path)."""
    service_urls: dict[str, str] = {}
    """Per-service addresses overriding `api_url` for that service's paths, e.g.
    `{"intake": "http://intake:8000"}` (services run apart without a path-routing proxy)."""
    public_url: str | None = None
    """Where browsers reach the console (its sign-in callback and the page after sign-out);
    default: `auth_issuer` (the console beside identity, as `nrm up` serves it)."""
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

    @property
    def console_base(self) -> str:
        return (self.public_url or self.auth_issuer).rstrip("/")

    def url_for(self, path: str) -> str:
        """The absolute URL of an API path: the owning service's own address if one is set."""
        service = owner(path)
        base = self.service_urls.get(service, self.api_base) if service else self.api_base
        return base.rstrip("/") + path
