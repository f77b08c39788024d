"""Insights' Kafka handlers: referral facts, routing decisions and recipients' actions."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import (
    DeliveryAction,
    IdentificationDecided,
    InvestigationRecorded,
    ReferralConsentChanged,
    ReferralErased,
    ReferralRouted,
    ReferralSubmitted,
    ReferralWithdrawn,
)
from services.common.bus import Handler
from services.common.erasure import ERASED, ErasureLedger
from services.insights import service

REFERRAL_TYPES = (
    "referral.submitted",
    "referral.consent_changed",
    "referral.withdrawn",
    "referral.identification_decided",
    "referral.investigation_recorded",
    ERASED,
)
ROUTING_TYPES = ("referral.routed",)
CASE_TYPES = ("referral.acknowledged", "referral.accepted", "referral.declined")
TYPES = REFERRAL_TYPES + ROUTING_TYPES + CASE_TYPES


async def on_event(session: AsyncSession, event: CloudEvent) -> None:
    """One consumer group for the three topics: one writer, and the handlers do not depend on
    the order of events across topics."""
    if event.type in REFERRAL_TYPES:
        await on_referral(session, event)
    elif event.type in ROUTING_TYPES:
        await on_routing(session, event)
    else:
        await on_case_event(session, event)


def erasing(ledger: ErasureLedger) -> Handler:
    """`on_event`, with each erasure written to the ledger before its transaction commits."""

    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        if event.type == ERASED:
            payload = event.payload()
            assert isinstance(payload, ReferralErased)
            ledger.record(
                referral_id=payload.referral_id, basis=payload.basis, erased_at=event.time
            )
        await on_event(session, event)

    return handle


async def on_referral(session: AsyncSession, event: CloudEvent) -> None:
    payload = event.payload()
    if isinstance(payload, ReferralErased):
        await service.apply_erased(session, referral_id=payload.referral_id)
    elif isinstance(payload, ReferralSubmitted):
        await service.apply_submitted(session, submitted=payload)
    elif isinstance(payload, ReferralConsentChanged):
        await service.apply_consent_changed(session, changed=payload)
    elif isinstance(payload, ReferralWithdrawn):
        await service.apply_withdrawn(session, withdrawn=payload)
    elif isinstance(payload, IdentificationDecided):
        await service.apply_identification(session, decided=payload)
    elif isinstance(payload, InvestigationRecorded):
        await service.apply_investigation(session, recorded=payload)


async def on_routing(session: AsyncSession, event: CloudEvent) -> None:
    payload = event.payload()
    if isinstance(payload, ReferralRouted):
        await service.apply_routed(session, routed=payload, at=event.time)


async def on_case_event(session: AsyncSession, event: CloudEvent) -> None:
    payload = event.payload()
    if isinstance(payload, DeliveryAction):
        await service.apply_action(session, action=payload)
