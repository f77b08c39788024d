"""Intake's request and response bodies."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.vocabulary import (
    ConfiguredAgencyId,
    ErasureBasis,
    IdentificationBasis,
    IdentificationDecision,
)


class ImplicatedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    implicated: Annotated[list[ConfiguredAgencyId], Field(min_length=1, max_length=20)]


class RecusalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=500)] | None = None


class IdentificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: IdentificationDecision
    decided_at: AwareDatetime
    basis: IdentificationBasis | None = None


class InvestigationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opened: bool
    date: date
    # Latin letters, digits, spaces and `/ . -`, as investigation numbers are written; no
    # control characters (they would reach every `full` reader's screen). ASCII classes, so
    # that the pattern reads the same in every regex dialect (Schemathesis, the service).
    number: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9./ -]+$")] | None
    ) = Field(default=None, description="The investigation's number (sealed; shown at `full` only)")


class Submitted(BaseModel):
    id: str
    reference: str
    status: str


class ReferralSummary(BaseModel):
    id: str
    reference: str
    kind: str
    status: str
    urgency: str
    region: str
    exploitation: list[str]
    submitted_by: str
    submitted_at: datetime


class ReferralPage(BaseModel):
    items: list[ReferralSummary]
    next_cursor: str | None


class ConsentOut(BaseModel):
    id: str
    consent: dict[str, Any]


class SafetyOut(BaseModel):
    id: str
    urgency: str
    safety: dict[str, Any]


class ImplicatedOut(BaseModel):
    id: str
    implicated: list[str]


class RecipientStatus(BaseModel):
    agency: str
    disclosure: str
    status: str
    deadline: datetime | None
    rule: str


class IdentificationStatus(BaseModel):
    status: str
    reasonable_grounds_due: datetime
    reflection_ends: datetime | None
    decided_at: datetime | None
    basis: str | None = None
    authority: str
    overdue: bool = Field(description="No reasonable-grounds decision by its due time yet")


class InvestigationStatus(BaseModel):
    opened: bool
    date: date
    agency: str


class HoldOut(BaseModel):
    agency: str
    placed_at: datetime


class ReferralStatus(BaseModel):
    id: str
    reference: str
    recipients: list[RecipientStatus]
    identification: IdentificationStatus | None = None
    investigation: InvestigationStatus | None = None
    holds: list[HoldOut] = Field(
        default=[], description="Legal holds standing: nothing is erased while there is one"
    )


class RunningClock(IdentificationStatus):
    referral_id: str
    reference: str


class RunningClocks(BaseModel):
    items: list[RunningClock]


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    basis: ErasureBasis


class Holds(BaseModel):
    id: str
    reference: str
    holds: list[HoldOut]


class ErasureOut(BaseModel):
    id: str
    status: Literal["erasure_requested", "erased"]
    basis: ErasureBasis
    requested_by: str | None = None
    requested_at: datetime | None = None
    erased_at: datetime | None = None


class PendingErasure(BaseModel):
    referral_id: str
    reference: str
    basis: ErasureBasis
    requested_at: datetime
    requested_by: str = Field(description="The requesting agency")
    requested_by_actor: str = Field(
        description="Who asked: the person's username, or the client id of a system"
    )
    held: bool = Field(description="A legal hold stands: the approval is refused until lifted")


class PendingErasures(BaseModel):
    items: list[PendingErasure]
    next_cursor: str | None


class DueItem(BaseModel):
    referral_id: str
    reference: str
    outcome: str = Field(description="The outcome whose period decides the due date")
    reached_at: datetime
    due: datetime
    held: bool = Field(description="A legal hold stands: the sweep leaves it")
    minor: bool


class DueList(BaseModel):
    now: datetime = Field(description="The retention clock (moved by its configured offset)")
    until: datetime
    items: list[DueItem]
