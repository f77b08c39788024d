"""Settings from the environment: shared `NRM_*`, overridden per service by `NRM_<SERVICE>_*`."""

import functools
import re
from pathlib import Path
from typing import ClassVar, NamedTuple

import yaml
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class AgenciesFile(NamedTuple):
    """What the services read from `agencies.yaml` on requests: immutable, so one parse is
    shared safely."""

    country: str | None
    agencies: tuple[tuple[str, str], ...]  # (id, type)


@functools.lru_cache(maxsize=4)
def _parsed(path: Path, version: tuple[int, int, int, int]) -> AgenciesFile:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        return AgenciesFile(None, ())
    country = data.get("country")
    agencies = tuple((str(a["id"]), str(a.get("type", ""))) for a in data.get("agencies", []))
    return AgenciesFile(str(country) if country else None, agencies)


def agencies_file(config_dir: Path) -> AgenciesFile:
    """`<config_dir>/agencies.yaml`, parsed once per version of the file (it is asked for on
    every submission): the version is its inode, size and change times, so a file replaced
    with its old modification time (`cp -p`) is read again."""
    path = config_dir / "agencies.yaml"
    try:
        st = path.stat()
    except FileNotFoundError:
        return AgenciesFile(None, ())
    return _parsed(path, (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))


class TrustedIssuer(BaseModel):
    """Another OpenID provider whose access tokens are accepted (for people, typically)."""

    issuer: str
    jwks_url: str
    audience: str | None = None
    """Default: `auth_audience`."""
    algorithms: list[str] = ["RS256", "ES256"]
    require_at_jwt: bool = False
    agency_claim: str = "agency"
    roles_claim: str = "roles"
    username_claim: str = "preferred_username"


class Settings(BaseSettings):
    """Values every service shares. Subclass per service and set `service`."""

    # Attribute docstrings become field descriptions: the configuration reference
    # (docs/configuration.md, `nrm docs settings`) is generated from them.
    model_config = SettingsConfigDict(
        env_prefix="NRM_", extra="ignore", use_attribute_docstrings=True
    )

    service: ClassVar[str] = "common"

    data_dir: Path = Path("var")
    """Where the embedded stack keeps SQLite files, generated keys and credentials."""
    config_dir: Path = Path(__file__).resolve().parents[2] / "deploy" / "config"
    """The configuration: `agencies.yaml` (seeded by identity) and `routing.yaml`."""
    port: int = 8000
    """HTTP port (`nrm up`, `nrm serve`)."""
    host: str = "127.0.0.1"
    """Address `nrm serve` binds; `0.0.0.0` in a container."""
    http_keep_alive_seconds: int = Field(default=75, ge=1)
    """How long an idle HTTP connection is kept open. Longer than the pools of clients and
    proxies in front (httpx 5 s, nginx upstreams 60 s): a server that closes first races the
    client's next request on that connection, which then fails with a reset."""
    kafka_bootstrap: str | None = None
    """Kafka bootstrap servers; unset, `nrm up` starts the embedded Tansu broker."""
    kafka_partitions: int = 6
    """Partitions of the topics the stack creates."""
    kafka_session_timeout_ms: int = 10_000
    """Consumer-group session timeout (Apache Kafka requires >= 6000; Tansu forms a group after
    half of it, so tests use 2000)."""
    kafka_fetch_max_wait_ms: int = 10
    """How long a consumer's fetch waits for records. Tansu answers a fetch that finds nothing
    only when this wait expires, so it is both the idle delivery delay per hop and the idle
    polling rate: 10 ms keeps POST → inbox quick; larger values cost less CPU while idle. It
    applies to the groups on the way from a submission to the recipients' inboxes and their
    reads (`router.referrals`, `notify.routing`, `intake.routing`); the others use
    `kafka_background_fetch_max_wait_ms`."""
    kafka_background_fetch_max_wait_ms: int = 250
    """The fetch wait of the consumer groups nobody waits on (audit, insights, the access
    watchers, escalations, the submitter's status view, notify's identification and erasure
    news): their idle polling costs the broker and the process CPU.
    The larger of this and `kafka_fetch_max_wait_ms` is used."""
    kafka_background_fetch_min_bytes: int = 1_048_576
    """How much a background group's fetch gathers before the broker answers it, within that
    group's fetch wait. Under load audit and insights then apply their events in a few large
    batches (about 28 events rather than 8 at 25 referrals/s), which leaves the event loop to
    the groups on the way to the inbox; 1 answers as soon as anything is there."""
    database_url: str | None = None
    """SQLAlchemy URL; `{service}` is replaced by the service name (one database each). Unset:
    `sqlite+aiosqlite:///<data_dir>/<service>.db`."""
    database_pool_size: int = 10
    """PostgreSQL connections each process keeps open (its share of `max_connections`)."""
    database_max_overflow: int = 10
    """PostgreSQL connections a process may open beyond the pool under load."""
    log_level: str = "INFO"
    """Log level of the JSON logs."""
    outbox_batch_size: int = 500
    """Outbox rows the relay publishes per round."""
    outbox_poll_interval: float = 1.0
    """Seconds between outbox polls when no commit woke the relay."""
    outbox_retention_seconds: float = 86_400
    """How long delivered outbox rows are kept before the housekeeping purge (every minute)."""
    replay_on_start: bool = False
    """Publish again, before serving, every outbox event not yet confirmed read by every
    consumer group of its topic: for a broker that may lose records (`nrm up` sets it for its
    in-memory broker). Rows are then kept until all groups have committed past them."""
    replay_timeout_seconds: float = 120
    """Longest a start waits for the replay to reach the broker before serving anyway."""
    replay_window_seconds: float = 7 * 86_400
    """Outbox events older than this are no longer replayed, even if some consumer group never
    confirmed them (logged as an error): the replay window."""
    event_source: str = "urn:nrm:local:{service}"
    """CloudEvents `source` of the events this service publishes (`ce_source`): an absolute URI,
    `{service}` replaced by the service's name. Name the deployment in it
    (`urn:nrm:kz-prod:{service}`) so that source and id stay unique across deployments; at most
    40 characters once formatted (the audit log's column)."""
    processed_retention_seconds: float = 8 * 86_400
    """How long consumers remember processed event ids (to drop duplicates); must exceed the
    replay window, so that a replayed event is always recognised."""
    delivery_check_seconds: float = 1.0
    """With replay on: how often the relay reads consumer groups' committed offsets."""
    consumer_max_attempts: int = 5
    """Tries before a record whose handler keeps failing is dead-lettered."""
    consumer_batch_size: int = Field(default=100, ge=1)
    """Records a consumer applies per database transaction (1: a transaction per event)."""
    max_body_bytes: int = 64 * 1024
    """Largest request body read by hand (413 above it)."""
    master_keys: dict[str, SecretStr] = {}
    """Encryption-at-rest master keys, `{"id": "<URL-safe base64 of 32 bytes>"}`, usually per
    service (`NRM_INTAKE_MASTER_KEYS`), from a secret store (`nrm keys generate` makes one)."""
    master_keys_file: Path | None = None
    """A file holding the master keys in the same JSON form (e.g. a mounted secret), read when
    `master_keys` is unset."""
    generate_master_keys: bool = False
    """Development only (`nrm up` sets it): without configured keys, generate them once into
    `<data_dir>/<service>-master-keys.json` (mode 600). Otherwise a service with no master
    keys refuses to start."""
    active_master_key: str | None = None
    """The master key new records are sealed with (default: the newest id in numeric-aware
    order, so `k10` after `k9`); older ids keep opening their records."""
    country: str | None = None
    """ISO 3166-1 alpha-2 code of the country the exchange serves: a referral's region must be
    one of its ISO 3166-2 subdivisions. Default: `country` in `agencies.yaml` (the example sets
    KZ); with neither, any country's subdivisions are accepted."""
    erasure_ledger: Path | None = None
    """The append-only list of erased referrals (default `<data_dir>/<service>-erasure-ledger.
    jsonl`). Keep it where a restore of the database does not overwrite it: on start the service
    erases again whatever a restored backup brought back."""
    auth_issuer: str = "http://127.0.0.1:8000"
    """Token issuer (`iss`) accepted, and the one identity puts in its tokens."""
    auth_audience: str = "nrm-exchange"
    """Token audience (`aud`) required."""
    auth_jwks_url: str | None = None
    """Where signing keys are fetched (default: `<issuer>/.well-known/jwks.json`)."""
    auth_algorithms: list[str] = ["ES256"]
    """Signature algorithms accepted (`none` and `HS*` are always refused)."""
    auth_require_at_jwt: bool = True
    """Require RFC 9068 `typ: at+jwt`; false for issuers such as Keycloak that send `JWT`."""
    auth_agency_claim: str = "agency"
    """The claim naming the caller's agency (a dotted path reaches into objects)."""
    auth_roles_claim: str = "roles"
    """The claim listing the caller's roles (e.g. `realm_access.roles` for Keycloak)."""
    auth_username_claim: str = "preferred_username"
    """The claim naming a person (their username), recorded as `actor` in the audit trail."""
    auth_trusted_issuers: list[TrustedIssuer] = []
    """More issuers whose tokens are accepted, e.g. an agency's or a country's own OpenID
    provider for people: JSON `[{"issuer", "jwks_url", "audience", "algorithms",
    "require_at_jwt", "agency_claim", "roles_claim", "username_claim"}]`. Their tokens must
    carry the agency and roles (under the configured claims); roles it does not know are
    ignored. Second factors are that provider's duty."""
    auth_leeway_seconds: int = 30
    """Clock skew allowed on `exp`, `nbf` and `iat`."""
    auth_max_token_lifetime_seconds: int = 3600
    """Longest lifetime (`exp` - `iat`) of a token accepted; longer-lived ones are refused."""
    api_docs_enabled: bool = True
    """Serve each service's OpenAPI document (`/openapi/<service>.json`) and the `/docs` page;
    turn off where the API description should not be public."""
    metrics_enabled: bool = True
    """Serve Prometheus metrics at `/metrics`."""
    metrics_token: SecretStr | None = None
    """If set, `/metrics` answers only `Authorization: Bearer <token>` (Prometheus'
    `authorization` setting); set it, or keep `/metrics` off the public ingress, in production."""
    revocation_refresh_seconds: float = 2.0
    """How often an instance re-reads revoked clients, agencies and people from its database
    (its own consumer applies them at once; this catches what another instance applied)."""

    def event_source_for(self, service: str) -> str:
        return self.event_source.format(service=service)

    @model_validator(mode="after")
    def _event_source_is_a_uri(self) -> "Settings":
        source = self.event_source_for("insights")  # the longest service name
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", source) or len(source) > 40:
            raise ValueError(
                "event_source must be an absolute URI (scheme:rest, e.g. urn:nrm:kz-prod:"
                "{service}) of at most 40 characters"
            )
        return self

    @model_validator(mode="after")
    def _processed_ids_outlive_replay(self) -> "Settings":
        if self.processed_retention_seconds <= self.replay_window_seconds:
            raise ValueError(
                "processed_retention_seconds must exceed replay_window_seconds: a replayed "
                "event must still be known to the consumers that applied it"
            )
        return self

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

    def fetch_wait_ms(self, *, background: bool) -> int:
        """The fetch wait of a consumer group (`Consumer.background`)."""
        if background:
            return max(self.kafka_fetch_max_wait_ms, self.kafka_background_fetch_max_wait_ms)
        return self.kafka_fetch_max_wait_ms

    def fetch_min_bytes(self, *, background: bool) -> int:
        """What a consumer group's fetch gathers before the broker answers (within its wait)."""
        return max(1, self.kafka_background_fetch_min_bytes) if background else 1

    def configured_agencies(self) -> frozenset[str]:
        """Ids of the agencies in `<config_dir>/agencies.yaml`, the file identity seeds from and
        the example policy routes to (empty when there is none)."""
        return frozenset(a for a, _ in agencies_file(self.config_dir).agencies)

    def served_country(self) -> str | None:
        if self.country:
            return self.country
        return agencies_file(self.config_dir).country

    def erasure_ledger_path(self) -> Path:
        return self.erasure_ledger or self.data_dir / f"{self.service}-erasure-ledger.jsonl"

    def database_url_for(self, service: str | None = None) -> str:
        """This service's database URL; `database_url` may hold `{service}`. Default: SQLite."""
        name = service or self.service
        if self.database_url:
            return self.database_url.format(service=name)
        return f"sqlite+aiosqlite:///{self.data_dir / name}.db"
