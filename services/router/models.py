"""The router's tables: what it decided for each referral, so later events can be re-decided."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import registry
from sqlmodel import JSON, Field, SQLModel

from services.common.models import UTCDateTime, empty_list, utcnow

router_registry = registry()
router_metadata = router_registry.metadata


class RouterTable(SQLModel, registry=router_registry):
    pass


class RoutedReferral(RouterTable, table=True):
    """A referral the router has routed, with the facts it last routed on."""

    __tablename__ = "routed_referral"

    referral_id: str = Field(primary_key=True, max_length=36)
    reference: str = Field(max_length=20)
    submitted_by: str = Field(max_length=63)
    facts: dict[str, Any] = Field(sa_type=JSON)
    withdrawn: bool = False
    policy_version: str = Field(max_length=40)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    """When the referral was erased: `facts` is emptied (the victim's profile goes; recipients,
    levels, rules, escalations and the policy version stay) and nothing is routed again."""


class Recipient(RouterTable, table=True):
    """A recipient's current disclosure level and the rule behind it."""

    __tablename__ = "routed_recipient"

    referral_id: str = Field(primary_key=True, max_length=36)
    agency: str = Field(primary_key=True, max_length=63)
    disclosure: str = Field(max_length=20)
    rule: str = Field(max_length=100)
    requires_consent: list[str] = Field(default_factory=empty_list, sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class Escalation(RouterTable, table=True):
    """One row per escalated delivery: its primary key is what stops a second escalation."""

    __tablename__ = "escalation"

    delivery_id: str = Field(primary_key=True, max_length=64)
    referral_id: str = Field(max_length=36, index=True)
    agency: str = Field(max_length=63)
    cause: str = Field(max_length=30)
    outcome: str = Field(max_length=200, description="escalated to …, or why not")
    decision_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())
