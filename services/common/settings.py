"""Settings from the environment: shared `NRM_*`, overridden per service by `NRM_<SERVICE>_*`."""

from pathlib import Path
from typing import ClassVar

from pydantic import SecretStr
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class Settings(BaseSettings):
    """Values every service shares. Subclass per service and set `service`."""

    model_config = SettingsConfigDict(env_prefix="NRM_", extra="ignore")

    service: ClassVar[str] = "common"

    data_dir: Path = Path("var")
    # The example configuration (agencies.yaml, routing.yaml); a container sets its own.
    config_dir: Path = Path(__file__).resolve().parents[2] / "deploy" / "config"
    port: int = 8000
    host: str = "127.0.0.1"  # `nrm serve` binds here; 0.0.0.0 in a container
    kafka_bootstrap: str | None = None
    kafka_partitions: int = 6
    kafka_session_timeout_ms: int = 10_000
    database_url: str | None = None
    log_level: str = "INFO"
    outbox_batch_size: int = 500
    outbox_poll_interval: float = 1.0
    consumer_max_attempts: int = 5
    max_body_bytes: int = 64 * 1024  # request bodies read by hand (413 above it)
    # Encryption at rest: {key id: URL-safe base64 of 32 bytes}, usually per service
    # (`NRM_INTAKE_MASTER_KEYS`). Unset: see `services.common.crypto.vault_from_settings`.
    master_keys: dict[str, SecretStr] = {}
    active_master_key: str | None = None
    # Resource-server token validation (any OAuth2/OIDC issuer, ours by default).
    auth_issuer: str = "http://127.0.0.1:8000"
    auth_audience: str = "nrm-exchange"
    auth_jwks_url: str | None = None  # default: <issuer>/.well-known/jwks.json
    auth_algorithms: list[str] = ["ES256"]
    auth_require_at_jwt: bool = True  # RFC 9068 `typ`; some issuers (Keycloak) send "JWT"
    auth_leeway_seconds: int = 30

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings]
        if cls.service != "common":
            prefix = f"NRM_{cls.service.upper()}_"
            sources.append(EnvSettingsSource(settings_cls, env_prefix=prefix))
        sources += [env_settings, file_secret_settings]
        return tuple(sources)

    def database_url_for(self, service: str | None = None) -> str:
        """This service's database URL; `database_url` may hold `{service}`. Default: SQLite."""
        name = service or self.service
        if self.database_url:
            return self.database_url.format(service=name)
        return f"sqlite+aiosqlite:///{self.data_dir / name}.db"
