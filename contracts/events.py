"""Payloads (`data`) of every event in DESIGN.md's catalogue.

None of them carries victim identity, contact or narrative: the bus holds routing facts only.
"""

from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.referrals import ConsentScopes, RoutingFacts, VictimStatistics
from contracts.vocabulary import (
    AgencyId,
    Disclosure,
    ErasureBasis,
    IdentificationBasis,
    IdentificationDecision,
    RiskLevel,
    VictimStatus,
)

ShortText = Annotated[str, Field(max_length=500)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# nrm.referrals.v1


class ReferralSubmitted(Payload):
    referral_id: str
    reference: str = Field(examples=["NRM-2026-000001"])
    submitted_at: AwareDatetime
    facts: RoutingFacts
    statistics: VictimStatistics | None = Field(
        default=None, description="Only where the victim consented to statistics"
    )


class ReferralConsentChanged(Payload):
    referral_id: str
    reference: str
    changed_by: AgencyId
    previous: ConsentScopes
    consent: ConsentScopes
    facts: RoutingFacts = Field(description="Routing facts with the new consent applied")
    statistics: VictimStatistics | None = Field(
        default=None, description="Only where the new consent includes statistics"
    )


class ReferralRiskChanged(Payload):
    """The victim's assessed risk changed. Carries the level only, never the assessment (who,
    when, channels, times): the router applies it to the facts it routed on."""

    referral_id: str
    reference: str
    risk_level: RiskLevel


class ReferralImplicatedChanged(Payload):
    """Agencies were named as implicated: routing leaves them out from now on."""

    referral_id: str
    reference: str
    facts: RoutingFacts = Field(description="Routing facts with `implicated` updated")


class ReferralWithdrawn(Payload):
    referral_id: str
    reference: str
    withdrawn_by: AgencyId


class IdentificationDecided(Payload):
    """The competent authority decided on the victim's status. No identity: the decision, its
    date and basis, and the routing facts with the new status (for follow-up rules)."""

    referral_id: str
    reference: str
    authority: AgencyId
    decision: IdentificationDecision
    previous: VictimStatus
    decided_at: AwareDatetime
    basis: IdentificationBasis | None = None
    facts: RoutingFacts = Field(description="Routing facts with `victim_status` updated")


class ReflectionStarted(Payload):
    """A reasonable-grounds decision started the recovery and reflection period."""

    referral_id: str
    reference: str
    started_at: AwareDatetime
    ends_at: AwareDatetime


class ReflectionEnded(Payload):
    """The recovery and reflection period ran out (a conclusive negative decision may follow)."""

    referral_id: str
    reference: str
    ended_at: AwareDatetime


class IdentificationOverdue(Payload):
    """No reasonable-grounds decision by its due time: escalated by policy (once)."""

    referral_id: str
    reference: str
    authority: AgencyId
    due: AwareDatetime


class InvestigationRecorded(Payload):
    """A law-enforcement recipient recorded whether a pre-trial investigation was opened. The
    investigation number stays in intake, sealed."""

    referral_id: str
    reference: str
    agency: AgencyId
    opened: bool
    date: date


class ReferralHoldChanged(Payload):
    """A legal hold placed (`held`) or lifted by a law-enforcement or prosecutor recipient while
    an investigation is open: nothing about the referral is erased while any hold stands."""

    referral_id: str
    reference: str
    agency: AgencyId
    held: bool


class ErasureRequested(Payload):
    """The national coordinator's supervisor asked for the referral's erasure; a `dpo` must
    approve it (two-person rule)."""

    referral_id: str
    reference: str
    basis: ErasureBasis
    requested_by: AgencyId


class ReferralErased(Payload):
    """The referral's data was destroyed (its keys shredded). The basis code only: every service
    drops or anonymises what it holds, and recipients are told."""

    referral_id: str
    basis: ErasureBasis


# nrm.routing.v1


class RoutingReason(StrEnum):
    SUBMITTED = "submitted"
    CONSENT_CHANGED = "consent_changed"
    WITHDRAWN = "withdrawn"
    ESCALATION = "escalation"
    RISK_CHANGED = "risk_changed"
    IMPLICATED = "implicated"
    FOLLOW_UP = "follow_up"  # an identification decision matched a follow-up rule


class RecipientDecision(Payload):
    agency: AgencyId
    disclosure: Disclosure
    rule: str = Field(description="Id of the policy rule that selected this recipient")
    deadline: AwareDatetime | None = Field(description="Acknowledge by; null when not required")
    requires_consent: list[Literal["services", "law_enforcement", "statistics"]] = Field(
        default=[],
        description=(
            "Consent scopes this disclosure level rests on: if the victim withdraws any of them, "
            "intake serves this recipient `anonymous` until a new routing decision says otherwise"
        ),
    )


class IdentificationTerms(Payload):
    """The identification clocks the policy gives a victim referral (on its first decision)."""

    authority: AgencyId = Field(description="The competent authority that decides")
    reasonable_grounds_due: AwareDatetime = Field(description="Decide reasonable grounds by")
    reflection_period: timedelta = Field(
        description="Recovery and reflection period from a reasonable-grounds decision"
    )


class ReferralRouted(Payload):
    referral_id: str
    reference: str
    decision_id: str
    reason: RoutingReason
    policy_version: str = Field(description="Content hash of the routing policy applied")
    facts: RoutingFacts
    recipients: list[RecipientDecision]
    escalated_delivery_id: str | None = Field(
        default=None, description="For escalations: the delivery whose miss or decline led here"
    )
    removed: list[AgencyId] = Field(
        default=[],
        description="Former recipients now named as implicated: their deliveries are taken "
        "away and they can no longer read the referral",
    )
    identification: IdentificationTerms | None = Field(
        default=None,
        description="On a victim referral's first decision: who identifies, and the clocks",
    )


# nrm.case-events.v1


class DeliveryRef(Payload):
    delivery_id: str
    referral_id: str
    agency: AgencyId


class DeliveryNotified(DeliveryRef):
    channel: Annotated[str, Field(examples=["inbox", "webhook", "email"])]


class DeliveryFailed(DeliveryRef):
    channel: str
    error: ShortText


class DeliveryAction(DeliveryRef):
    """A staff action on a delivery; `actor` is the person's username, or the client id when a
    system acted (never a person's name)."""

    actor: str
    at: AwareDatetime


class ReferralAcknowledged(DeliveryAction):
    pass


class ReferralAccepted(DeliveryAction):
    pass


class ReferralDeclined(DeliveryAction):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class ReferralCompleted(DeliveryAction):
    pass


class ReferralErasureAcknowledged(DeliveryAction):
    """A recipient acknowledged the notice that the referral was erased (once per delivery)."""


class ReferralDeadlineMissed(DeliveryRef):
    deadline: AwareDatetime
    rule: str


# nrm.access.v1


class AccessEvent(Payload):
    action: Annotated[str, Field(examples=["referral.read"])]
    resource_type: str
    resource_id: str | None = None
    agency: AgencyId | None = None
    client_id: str | None = None
    actor: str | None = Field(
        default=None, description="The person (username) who acted, or the client for a system"
    )
    disclosure: Disclosure | None = None
    purpose: ShortText | None = Field(default=None, description="The caller's X-Purpose header")


class AccessGranted(AccessEvent):
    pass


class AccessDenied(AccessEvent):
    reason: ShortText


class AuthFailed(Payload):
    """Failed authentication. In a flood, repeated failures of one client from one address are
    coalesced: the first is recorded at once, the rest as one record with their count."""

    reason: ShortText
    client_id: str | None = None
    actor: str | None = Field(default=None, description="The username a person signed in with")
    path: str | None = None
    source: str | None = Field(default=None, description="The caller's network address")
    attempts: int = Field(default=1, ge=1, description="Failures this record stands for")
    first_at: AwareDatetime | None = Field(default=None, description="First of `attempts`")
    last_at: AwareDatetime | None = Field(default=None, description="Last of `attempts`")


SubjectType = Literal["client", "agency", "person"]


class AccessRevoked(Payload):
    """A client, agency or person was disabled: every service refuses its tokens from now on
    (an agency's: every token that carries it), and routing treats a disabled agency as absent."""

    subject_type: SubjectType
    subject_id: Annotated[str, Field(min_length=1, max_length=100)]
    not_before: AwareDatetime = Field(
        description="Tokens issued (`iat`) before this stay refused after access is restored"
    )
    actor: str | None = None
    reason: ShortText | None = None


class AccessRestored(Payload):
    """A disabled client, agency or person was enabled again: tokens issued from now on are
    accepted (older ones stay refused, see `access.revoked`'s `not_before`)."""

    subject_type: SubjectType
    subject_id: Annotated[str, Field(min_length=1, max_length=100)]
    actor: str | None = None


class AdminChanged(Payload):
    action: Annotated[str, Field(examples=["client.created"])]
    target_type: str
    target_id: str
    actor: str | None = None
    details: dict[str, Any] = {}


EVENT_TYPES: dict[str, type[Payload]] = {
    "referral.submitted": ReferralSubmitted,
    "referral.consent_changed": ReferralConsentChanged,
    "referral.withdrawn": ReferralWithdrawn,
    "referral.risk_changed": ReferralRiskChanged,
    "referral.implicated_changed": ReferralImplicatedChanged,
    "referral.identification_decided": IdentificationDecided,
    "referral.reflection_started": ReflectionStarted,
    "referral.reflection_ended": ReflectionEnded,
    "referral.identification_overdue": IdentificationOverdue,
    "referral.investigation_recorded": InvestigationRecorded,
    "referral.hold_changed": ReferralHoldChanged,
    "referral.erasure_requested": ErasureRequested,
    "referral.erased": ReferralErased,
    "referral.routed": ReferralRouted,
    "delivery.notified": DeliveryNotified,
    "delivery.failed": DeliveryFailed,
    "referral.acknowledged": ReferralAcknowledged,
    "referral.accepted": ReferralAccepted,
    "referral.declined": ReferralDeclined,
    "referral.completed": ReferralCompleted,
    "referral.deadline_missed": ReferralDeadlineMissed,
    "referral.erasure_acknowledged": ReferralErasureAcknowledged,
    "access.granted": AccessGranted,
    "access.denied": AccessDenied,
    "auth.failed": AuthFailed,
    "admin.changed": AdminChanged,
    "access.revoked": AccessRevoked,
    "access.restored": AccessRestored,
}


def parse_payload(event_type: str, data: Any) -> Payload:
    """Validate `data` against the model registered for `event_type`."""
    try:
        model = EVENT_TYPES[event_type]
    except KeyError:
        raise ValueError(f"unknown event type {event_type!r}") from None
    return model.model_validate(data)


def type_of(payload: Payload) -> str:
    """The CloudEvents `type` of a payload instance."""
    return _TYPE_OF[type(payload)]


_TYPE_OF = {model: name for name, model in EVENT_TYPES.items()}
