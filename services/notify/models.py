"""Notify's tables: deliveries, the change feed behind the live stream, webhooks and dispatches.

No victim identity anywhere: deliveries hold the routing facts the bus carried, nothing more,
and after an erasure not even those (`service.apply_erased`).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import JSON, Field, SQLModel

from services.common.models import UTCDateTime, empty_dict, empty_list, utcnow

notify_registry = registry()
notify_metadata = notify_registry.metadata

TIMESTAMP = UTCDateTime()


class NotifyTable(SQLModel, registry=notify_registry):
    pass


class Delivery(NotifyTable, table=True):
    """One recipient agency's copy of a referral, and where it is in its lifecycle."""

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("referral_id", "agency"),)

    id: str = Field(primary_key=True, max_length=36)
    referral_id: str = Field(max_length=36, index=True)
    reference: str = Field(max_length=20)
    agency: str = Field(max_length=63, index=True)
    status: str = Field(max_length=20, index=True)
    disclosure: str = Field(max_length=20)
    rule: str = Field(max_length=100)
    deadline: datetime | None = Field(default=None, sa_type=TIMESTAMP, index=True)
    deadline_missed_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    # The referral's facts: null (and no exploitation) once the referral is erased.
    urgency: str | None = Field(default=None, max_length=20)
    region: str | None = Field(default=None, max_length=10)
    kind: str | None = Field(default=None, max_length=20)
    exploitation: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    minor: bool | None = False
    decision_id: str = Field(max_length=36)
    decline_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP)
    erased_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    """When the referral was erased: the delivery keeps routing facts only (agency, level,
    rule, deadline, statuses and their times) and the recipient must acknowledge the notice."""
    erasure_acknowledged_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)


class Recusal(NotifyTable, table=True):
    """A person who recused themselves from a referral (learnt from intake's
    `admin.changed` `referral.recused`): the agency's deliveries of it are hidden from them."""

    __tablename__ = "recusal"

    referral_id: str = Field(primary_key=True, max_length=36)
    subject: str = Field(primary_key=True, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP)


class ErasedReferral(NotifyTable, table=True):
    """A referral erased (`referral.erased`): a routing decision that crosses the erasure on
    another topic creates no delivery of it. Its id and the time only."""

    __tablename__ = "erased_referral"

    referral_id: str = Field(primary_key=True, max_length=36)
    erased_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP)


class DeliveryChange(NotifyTable, table=True):
    """Every change to a delivery, in order: the live stream replays it from `Last-Event-ID`."""

    __tablename__ = "delivery_change"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    agency: str = Field(max_length=63, index=True)
    delivery_id: str = Field(max_length=36)
    kind: str = Field(max_length=40)
    item: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP)


class Webhook(NotifyTable, table=True):
    """An agency's webhook endpoint; the signing secret is sealed by the vault."""

    __tablename__ = "webhook"

    agency: str = Field(primary_key=True, max_length=63)
    url: str = Field(max_length=2000)
    sealed_secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str = Field(max_length=64)
    enabled: bool = True
    consecutive_failures: int = 0
    disabled_reason: str | None = Field(default=None, max_length=500)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP)


class EmailRecipients(NotifyTable, table=True):
    """Where an agency's staff are e-mailed, and in which language."""

    __tablename__ = "email_recipients"

    agency: str = Field(primary_key=True, max_length=63)
    addresses: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    language: str = Field(max_length=8)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP)


class Dispatch(NotifyTable, table=True):
    """One message to send by webhook or e-mail, retried until delivered or given up.

    For webhooks the id is the `webhook-id`: the same on every retry, so receivers deduplicate.
    """

    __tablename__ = "dispatch"

    id: str = Field(primary_key=True, max_length=40)
    channel: str = Field(max_length=10)
    agency: str = Field(max_length=63, index=True)
    delivery_id: str = Field(max_length=36)
    kind: str = Field(max_length=40)
    payload: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
    status: str = Field(default="pending", max_length=20, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP, index=True)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP)
    done_at: datetime | None = Field(default=None, sa_type=TIMESTAMP)
    # The trace that queued it: its delivery event continues it (W3C `traceparent`).
    traceparent: str | None = Field(default=None, max_length=55)


class DispatchAttempt(NotifyTable, table=True):
    """The delivery-attempt log: every try, with what the other side said."""

    __tablename__ = "dispatch_attempt"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    dispatch_id: str = Field(max_length=40, index=True)
    agency: str = Field(max_length=63, index=True)
    channel: str = Field(max_length=10)
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMP)
    ok: bool
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int = 0
