"""The insights projection: what each referral and delivery contributes to the statistics.

Built only from the event topics. No identity: a referral is its random id with coarse facts;
victim attributes (age band, sex, citizenship) only while the victim consents to statistics.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import registry
from sqlmodel import JSON, Field, SQLModel

from services.common.models import UTCDateTime, empty_dict, utcnow

insights_registry = registry()
insights_metadata = insights_registry.metadata


class InsightsTable(SQLModel, registry=insights_registry):
    pass


class ReferralFact(InsightsTable, table=True):
    """One referral or tip, as counted."""

    __tablename__ = "stat_referral"

    referral_id: str = Field(primary_key=True, max_length=36)
    submitted_at: datetime = Field(sa_type=UTCDateTime())
    month: str = Field(max_length=7, index=True)  # YYYY-MM of submitted_at, UTC
    kind: str = Field(max_length=20)
    region: str = Field(max_length=10)
    exploitation: str = Field(max_length=30)  # the type, or `multiple`
    destination: str = Field(max_length=10)  # the country, `none` or `multiple`
    submitted_by: str = Field(max_length=63)
    minor: bool = False
    statistics_consent: bool = False
    age_band: str | None = Field(default=None, max_length=10)
    sex: str | None = Field(default=None, max_length=10)
    citizenship: str | None = Field(default=None, max_length=2)
    withdrawn: bool = False
    # The NRM funnel's later stages, from the identification events (no identity: the
    # decisions and their times only).
    authority: str | None = Field(default=None, max_length=63)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    """The reasonable-grounds stage's decision (either way): when the authority decided."""
    reasonable_grounds: bool = False
    confirmed: bool = False
    investigation_opened: bool = False
    """As the last `referral.investigation_recorded` says."""


class DeliveryFact(InsightsTable, table=True):
    """One recipient agency of a referral: when it was routed there and what it did."""

    __tablename__ = "stat_delivery"

    referral_id: str = Field(primary_key=True, max_length=36)
    agency: str = Field(primary_key=True, max_length=63)
    routed_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    deadline: datetime | None = Field(default=None, sa_type=UTCDateTime())
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    declined_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class ErasedReferral(InsightsTable, table=True):
    """A referral erased: its rows above were moved to a random id (no link back), and events
    of it that arrive later are dropped. The id and the time only."""

    __tablename__ = "stat_erased"

    referral_id: str = Field(primary_key=True, max_length=36)
    erased_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class Release(InsightsTable, table=True):
    """An open-data release and the privacy budget it spent (the ledger)."""

    __tablename__ = "dp_release"

    id: str = Field(primary_key=True, max_length=36)
    year: int = Field(index=True)
    epsilon: float
    delta: float = 0.0
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    content: dict[str, Any] = Field(default_factory=empty_dict, sa_type=JSON)
