"""Intake's tables. Identity, contact and narrative exist only inside `sealed` (encrypted)."""

from datetime import date as date_
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Date, LargeBinary
from sqlalchemy.orm import registry
from sqlmodel import JSON, Field, SQLModel

from services.common.models import UTCDateTime, empty_dict, empty_list, utcnow

intake_registry = registry()
intake_metadata = intake_registry.metadata


class IntakeTable(SQLModel, registry=intake_registry):
    pass


class Referral(IntakeTable, table=True):
    __tablename__ = "referral"

    id: str = Field(primary_key=True, max_length=36)
    reference: str = Field(max_length=20, unique=True)
    kind: str = Field(max_length=20)
    status: str = Field(default="submitted", max_length=20, index=True)
    submitted_by: str = Field(max_length=63, index=True)
    submitted_by_client: str = Field(max_length=100)
    external_ref: str | None = Field(default=None, max_length=64)
    urgency: str = Field(max_length=20, index=True)
    region: str = Field(max_length=10, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    # Non-identifying parts: routing facts, victim profile without identity, consent, tip source.
    facts: dict[str, Any] = Field(sa_type=JSON)
    profile: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
    consent: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str = Field(max_length=64)
    # Retention (services/common/retention.py). The date of birth stays sealed: a minor's
    # majority is kept as the first day of the month after the 18th birthday (all the sweep
    # needs, never earlier than the real one); None for an adult.
    majority_on: date_ | None = Field(default=None, sa_type=Date())
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    # Erased (crypto-shredded): status `erased`, the basis code and when; nothing else is kept.
    erasure_basis: str | None = Field(default=None, max_length=30)
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class ReferenceCounter(IntakeTable, table=True):
    """Last human reference number issued per year; incremented under the row lock."""

    __tablename__ = "reference_counter"

    year: int = Field(primary_key=True)
    last: int = 0


class IdempotencyRecord(IntakeTable, table=True):
    __tablename__ = "idempotency_key"

    agency: str = Field(primary_key=True, max_length=63)
    key: str = Field(primary_key=True, max_length=200)
    body_hash: str = Field(max_length=64)
    referral_id: str = Field(max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class Recipient(IntakeTable, table=True):
    """What intake knows of a recipient from `referral.routed` and the case events."""

    __tablename__ = "recipient"

    referral_id: str = Field(primary_key=True, max_length=36)
    agency: str = Field(primary_key=True, max_length=63, index=True)
    disclosure: str = Field(max_length=20)
    requires_consent: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    rule: str = Field(max_length=100)
    deadline: datetime | None = Field(default=None, sa_type=UTCDateTime())
    status: str = Field(default="routed", max_length=20)
    delivery_id: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class Recusal(IntakeTable, table=True):
    """A person who stepped away from a referral: refused it from then on."""

    __tablename__ = "recusal"

    referral_id: str = Field(primary_key=True, max_length=36)
    subject: str = Field(primary_key=True, max_length=100)
    agency: str = Field(max_length=63)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class Identification(IntakeTable, table=True):
    """A victim referral's identification: the competent authority's decisions and the clocks
    the routing policy gave it (`referral.routed`'s `identification` terms)."""

    __tablename__ = "identification"

    referral_id: str = Field(primary_key=True, max_length=36)
    authority: str = Field(max_length=63)
    status: str = Field(max_length=30)
    reasonable_grounds_due: datetime = Field(sa_type=UTCDateTime(), index=True)
    reflection_period_seconds: float
    reflection_ends: datetime | None = Field(default=None, sa_type=UTCDateTime(), index=True)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    basis: str | None = Field(default=None, max_length=40)
    decided_by: str | None = Field(default=None, max_length=100)
    # Set when the clock announced the miss or the period's end: claimed by a conditional
    # UPDATE, so each is announced once whatever the number of intake instances.
    overdue_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    reflection_ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class Investigation(IntakeTable, table=True):
    """Whether a pre-trial investigation was opened; its number exists only inside `sealed`."""

    __tablename__ = "investigation"

    referral_id: str = Field(primary_key=True, max_length=36)
    agency: str = Field(max_length=63)
    opened: bool
    date: date_ = Field(sa_type=Date())
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str = Field(max_length=64)
    recorded_by: str | None = Field(default=None, max_length=100)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class LegalHold(IntakeTable, table=True):
    """A legal hold placed by a law-enforcement or prosecutor recipient while an investigation
    is open: nothing about the referral is erased while one stands. Lifted by its agency."""

    __tablename__ = "legal_hold"

    referral_id: str = Field(primary_key=True, max_length=36)
    agency: str = Field(primary_key=True, max_length=63)
    placed_by: str = Field(max_length=100)
    placed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class ErasureRequest(IntakeTable, table=True):
    """A pending erasure: requested by the national coordinator's supervisor, waiting for a
    `dpo`'s approval (two-person rule). Gone once approved or cancelled."""

    __tablename__ = "erasure_request"

    referral_id: str = Field(primary_key=True, max_length=36)
    basis: str = Field(max_length=30)
    requested_by: str = Field(max_length=63)  # the agency
    requested_by_actor: str = Field(max_length=100)  # the person (or client)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
