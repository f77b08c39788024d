"""Identity's tables: agencies, clients (secrets hashed), signing keys, people and their
sign-in (sessions, authorization codes, refresh tokens)."""

from datetime import datetime

from sqlalchemy import BigInteger, Column, LargeBinary
from sqlalchemy.orm import registry
from sqlmodel import JSON, Field, SQLModel

from services.common.models import UTCDateTime, empty_list, utcnow

identity_registry = registry()
identity_metadata = identity_registry.metadata


class IdentityTable(SQLModel, registry=identity_registry):
    pass


class Agency(IdentityTable, table=True):
    __tablename__ = "agency"

    id: str = Field(primary_key=True, max_length=63)
    name: str = Field(max_length=200)
    type: str = Field(max_length=40)
    regions: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    language: str = Field(default="en", max_length=2)
    disabled: bool = False
    # Set when disabled: tokens issued before it stay refused after the agency is enabled again.
    tokens_not_before: datetime | None = Field(default=None, sa_type=UTCDateTime())
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class Client(IdentityTable, table=True):
    __tablename__ = "client"

    client_id: str = Field(primary_key=True, max_length=100)
    agency: str = Field(max_length=63, index=True)
    roles: list[str] = Field(sa_type=JSON)
    secret_hash: str = Field(max_length=200)
    disabled: bool = False
    tokens_not_before: datetime | None = Field(default=None, sa_type=UTCDateTime())
    # Clients that sign people in (OpenID Connect): the exact URIs they may be sent back to.
    redirect_uris: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    post_logout_redirect_uris: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    secret_rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class SigningKey(IdentityTable, table=True):
    """A token-signing key. Retired keys stay published until their last token has expired."""

    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, max_length=64)
    alg: str = Field(max_length=16)
    # The private JWK, sealed with the identity service's master key (services.common.crypto).
    sealed_private: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str = Field(max_length=64)
    public_jwk: dict[str, str] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


# People and their sign-in (OpenID Connect provider, services.identity.oidc)


class Person(IdentityTable, table=True):
    """A person who signs in as themselves. Passwords are argon2 hashes; the TOTP secret is
    sealed with identity's master key; recovery codes are kept as SHA-256 digests (they are
    random, so a fast digest guards them as well as a slow one would)."""

    __tablename__ = "person"

    id: str = Field(primary_key=True, max_length=36)
    username: str = Field(max_length=100, unique=True)
    agency: str = Field(max_length=63, index=True)
    roles: list[str] = Field(sa_type=JSON)
    password_hash: str = Field(max_length=200)
    totp_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    totp_wrapped_key: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    totp_master_key_id: str | None = Field(default=None, max_length=64)
    # False while enrolment awaits the first code: the secret is shown, not yet proven.
    totp_confirmed: bool = False
    # The last time step accepted: a code is good once (RFC 6238 §5.2).
    totp_last_step: int | None = Field(default=None, sa_type=BigInteger)
    recovery_codes: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    disabled: bool = False
    tokens_not_before: datetime | None = Field(default=None, sa_type=UTCDateTime())
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    password_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class PersonSession(IdentityTable, table=True):
    """A browser's sign-in at identity: `stage` is `otp` (password checked, code awaited),
    `enrol` (second factor being set up) or `done`. The cookie holds a random value; the table
    its SHA-256."""

    __tablename__ = "person_session"

    id: str = Field(primary_key=True, max_length=64)
    person_id: str = Field(max_length=36, index=True)
    stage: str = Field(max_length=8)
    amr: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    auth_time: datetime | None = Field(default=None, sa_type=UTCDateTime())
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    expires_at: datetime = Field(sa_type=UTCDateTime())
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class AuthorizationCode(IdentityTable, table=True):
    """An authorization code (kept as its SHA-256), good once and briefly."""

    __tablename__ = "oauth_code"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=100)
    person_id: str = Field(max_length=36)
    session_id: str = Field(max_length=64)
    redirect_uri: str = Field(max_length=2000)
    scope: str = Field(max_length=500)
    nonce: str | None = Field(default=None, max_length=500)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=8)
    amr: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    auth_time: datetime = Field(sa_type=UTCDateTime())
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    expires_at: datetime = Field(sa_type=UTCDateTime())
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class RefreshToken(IdentityTable, table=True):
    """A refresh token (kept as its SHA-256). Each use rotates it: the new one joins the same
    family, and presenting a rotated one again revokes the whole family (RFC 9700 §4.14.2)."""

    __tablename__ = "refresh_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    family_id: str = Field(max_length=64, index=True)
    client_id: str = Field(max_length=100)
    person_id: str = Field(max_length=36, index=True)
    session_id: str = Field(max_length=64, index=True)
    scope: str = Field(max_length=500)
    amr: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    auth_time: datetime = Field(sa_type=UTCDateTime())
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    expires_at: datetime = Field(sa_type=UTCDateTime())
    rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
