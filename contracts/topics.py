"""The topic catalogue as code (DESIGN.md, Events). Who publishes and who consumes each topic is
declared by the services beside their handlers (their `consumer.py`), not here."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    types: tuple[str, ...]
    description: str


REFERRALS = Topic(
    name="nrm.referrals.v1",
    types=(
        "referral.submitted",
        "referral.consent_changed",
        "referral.withdrawn",
        "referral.risk_changed",
        "referral.implicated_changed",
        "referral.identification_decided",
        "referral.reflection_started",
        "referral.reflection_ended",
        "referral.identification_overdue",
        "referral.investigation_recorded",
        "referral.hold_changed",
        "referral.erasure_requested",
        "referral.erased",
    ),
    description="Referral lifecycle facts published by intake (routing facts only, no identity): "
    "submissions, consent, risk, withdrawal, identification decisions and their clocks, "
    "investigations, legal holds and erasure.",
)
ROUTING = Topic(
    name="nrm.routing.v1",
    types=("referral.routed",),
    description="Routing decisions: recipients, disclosure, deadlines, rules, policy version.",
)
CASE_EVENTS = Topic(
    name="nrm.case-events.v1",
    types=(
        "delivery.notified",
        "delivery.failed",
        "referral.acknowledged",
        "referral.accepted",
        "referral.declined",
        "referral.completed",
        "referral.deadline_missed",
        "referral.erasure_acknowledged",
    ),
    description="What recipients did with a delivery, missed deadlines, and recipients' "
    "acknowledgements that a referral was erased.",
)
ACCESS = Topic(
    name="nrm.access.v1",
    types=(
        "access.granted",
        "access.denied",
        "auth.failed",
        "admin.changed",
        "access.revoked",
        "access.restored",
    ),
    description=(
        "Every read, denial, failed authentication and administrative change; revocations, "
        "which every service applies to the tokens it accepts."
    ),
)
DEADLETTER = Topic(
    name="nrm.deadletter.v1",
    types=(),
    description="Records a consumer could not process: the original record plus error headers.",
)

CATALOGUE: tuple[Topic, ...] = (REFERRALS, ROUTING, CASE_EVENTS, ACCESS, DEADLETTER)


def topic_for_type(event_type: str) -> Topic:
    """The one topic an event type is published on."""
    for topic in CATALOGUE:
        if event_type in topic.types:
            return topic
    raise KeyError(f"no topic carries events of type {event_type!r}")
