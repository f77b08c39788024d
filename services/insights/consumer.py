"""Insights' Kafka side: referral facts, routing decisions and recipients' actions, in one
consumer group for the three topics (one writer; the handlers do not depend on the order of
events across topics). Each erasure is written to the ledger before its transaction commits."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts import events as ev
from contracts.cloudevents import CloudEvent
from contracts.topics import CASE_EVENTS, REFERRALS, ROUTING
from services.common.access import EMITTED
from services.common.consumers import Consumer, Publisher
from services.common.erasure import ErasureLedger
from services.common.revocation import access_consumer
from services.insights import service

access = access_consumer("insights")
events = Consumer[ErasureLedger](
    "insights",
    service="insights",
    topics=[REFERRALS, ROUTING, CASE_EVENTS],
    summary="Referral facts, routing decisions and recipients' actions, for statistics",
    background=True,
)
CONSUMERS = (access, events)
PUBLISHER = Publisher("insights", (ev.AccessGranted, *EMITTED))


@events.prepares()
async def rows(_: ErasureLedger, session: AsyncSession, batch: list[CloudEvent]) -> None:
    # Every event of these topics has its referral as subject (and as key).
    await service.prefetch(session, referral_ids={e.subject for e in batch if e.subject})


@events.handles(ev.ReferralErased)
async def erased(
    ledger: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.ReferralErased
) -> None:
    ledger.record(referral_id=payload.referral_id, basis=payload.basis, erased_at=event.time)
    await service.apply_erased(session, referral_id=payload.referral_id)


@events.handles(ev.ReferralSubmitted)
async def submitted(
    _: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.ReferralSubmitted
) -> None:
    await service.apply_submitted(session, submitted=payload)


@events.handles(ev.ReferralConsentChanged)
async def consent_changed(
    _: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.ReferralConsentChanged
) -> None:
    await service.apply_consent_changed(session, changed=payload)


@events.handles(ev.ReferralWithdrawn)
async def withdrawn(
    _: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.ReferralWithdrawn
) -> None:
    await service.apply_withdrawn(session, withdrawn=payload)


@events.handles(ev.IdentificationDecided)
async def identification_decided(
    _: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.IdentificationDecided
) -> None:
    await service.apply_identification(session, decided=payload)


@events.handles(ev.InvestigationRecorded)
async def investigation_recorded(
    _: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.InvestigationRecorded
) -> None:
    await service.apply_investigation(session, recorded=payload)


@events.handles(ev.ReferralRouted)
async def routed(
    _: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.ReferralRouted
) -> None:
    await service.apply_routed(session, routed=payload, at=event.time)


@events.handles(ev.ReferralAcknowledged, ev.ReferralAccepted, ev.ReferralDeclined)
async def acted(
    _: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.DeliveryAction
) -> None:
    await service.apply_action(session, action=payload)
