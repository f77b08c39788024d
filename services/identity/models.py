"""Identity's tables: agencies, clients (secrets hashed), signing keys."""

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlalchemy.orm import registry
from sqlmodel import JSON, Field, SQLModel

from services.common.models import UTCDateTime, empty_list, utcnow

identity_registry = registry()
identity_metadata = identity_registry.metadata


class IdentityTable(SQLModel, registry=identity_registry):
    pass


class AgencyRow(IdentityTable, table=True):
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


class ClientRow(IdentityTable, table=True):
    __tablename__ = "client"

    client_id: str = Field(primary_key=True, max_length=100)
    agency: str = Field(max_length=63, index=True)
    roles: list[str] = Field(sa_type=JSON)
    secret_hash: str = Field(max_length=200)
    disabled: bool = False
    tokens_not_before: datetime | None = Field(default=None, sa_type=UTCDateTime())
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    secret_rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class SigningKeyRow(IdentityTable, table=True):
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
