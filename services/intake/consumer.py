"""Intake's Kafka side: it learns recipients from `referral.routed` and their progress from case
events, and publishes the referral lifecycle."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts import events as ev
from contracts.cloudevents import CloudEvent
from contracts.topics import CASE_EVENTS, ROUTING
from services.common.access import EMITTED
from services.common.consumers import Consumer, Publisher
from services.common.revocation import access_consumer
from services.intake import service

access = access_consumer("intake")
# Not background: a recipient opens the referral from its inbox item, and intake answers 404
# until it has applied the decision that made it a recipient.
routing = Consumer[None](
    "intake.routing", service="intake", topics=[ROUTING], summary="Recipients of each referral"
)
case_events = Consumer[None](
    "intake.case-events",
    service="intake",
    topics=[CASE_EVENTS],
    summary="Each recipient's progress, for the submitter's status view",
    background=True,
)
CONSUMERS = (access, routing, case_events)
PUBLISHER = Publisher(
    "intake",
    (
        ev.ReferralSubmitted,
        ev.ReferralConsentChanged,
        ev.ReferralWithdrawn,
        ev.ReferralRiskChanged,
        ev.ReferralImplicatedChanged,
        ev.IdentificationDecided,
        ev.ReflectionStarted,
        ev.ReflectionEnded,
        ev.IdentificationOverdue,
        ev.InvestigationRecorded,
        ev.ReferralHoldChanged,
        ev.ErasureRequested,
        ev.ReferralErased,
        ev.AccessGranted,
        ev.AdminChanged,
        *EMITTED,
    ),
)


@routing.handles(ev.ReferralRouted)
async def routed(
    _: None, session: AsyncSession, event: CloudEvent, payload: ev.ReferralRouted
) -> None:
    await service.apply_routed(session, routed=payload)


@case_events.handles(ev.DeliveryNotified)
async def notified(
    _: None, session: AsyncSession, event: CloudEvent, payload: ev.DeliveryNotified
) -> None:
    await service.apply_case_event(session, event=payload, status="notified")


@case_events.handles(*service.CASE_STATUS)
async def acted(_: None, session: AsyncSession, event: CloudEvent, payload: ev.DeliveryRef) -> None:
    await service.apply_case_event(
        session, event=payload, status=service.CASE_STATUS[type(payload)]
    )
