"""Notify's Kafka side: routing decisions become deliveries; recusals hide them; identification
and investigation events reach every recipient; erasures empty deliveries and tell their
recipients. It publishes what recipients did with their deliveries."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts import events as ev
from contracts.cloudevents import CloudEvent
from contracts.topics import REFERRALS, ROUTING
from services.common.access import EMITTED
from services.common.consumers import Consumer, Publisher
from services.common.erasure import ErasureLedger
from services.common.revocation import Revocations, access_consumer
from services.notify import service

RECUSED = "referral.recused"

access = access_consumer("notify")
routing = Consumer[None](
    "notify.routing",
    service="notify",
    topics=[ROUTING],
    summary="Routing decisions become one delivery per recipient",
)
referrals = Consumer[ErasureLedger](
    "notify.referrals",
    service="notify",
    topics=[REFERRALS],
    summary="Identification, investigation and erasure news for every recipient",
    background=True,
)
CONSUMERS = (access, routing, referrals)
PUBLISHER = Publisher(
    "notify",
    (
        ev.DeliveryNotified,
        ev.DeliveryFailed,
        ev.ReferralAcknowledged,
        ev.ReferralAccepted,
        ev.ReferralDeclined,
        ev.ReferralCompleted,
        ev.ReferralDeadlineMissed,
        ev.ReferralErasureAcknowledged,
        ev.AdminChanged,
        *EMITTED,
    ),
)


@access.handles(ev.AdminChanged)
async def recused(
    _: Revocations, session: AsyncSession, event: CloudEvent, payload: ev.AdminChanged
) -> None:
    """`admin.changed` `referral.recused` (intake): `actor` is the person's `sub`."""
    if payload.action == RECUSED and payload.actor:
        await service.recuse(session, referral_id=payload.target_id, subject=payload.actor)


@routing.handles(ev.ReferralRouted)
async def routed(
    _: None, session: AsyncSession, event: CloudEvent, payload: ev.ReferralRouted
) -> None:
    await service.apply_routed(session, routed=payload)


@referrals.handles(ev.ReferralErased)
async def erased(
    ledger: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.ReferralErased
) -> None:
    """Written to the ledger before the transaction commits."""
    ledger.record(referral_id=payload.referral_id, basis=payload.basis, erased_at=event.time)
    await service.apply_erased(session, referral_id=payload.referral_id)


@referrals.handles(
    ev.IdentificationDecided,
    ev.ReflectionStarted,
    ev.ReflectionEnded,
    ev.IdentificationOverdue,
    ev.InvestigationRecorded,
)
async def progress(
    _: ErasureLedger, session: AsyncSession, event: CloudEvent, payload: ev.Payload
) -> None:
    if event.subject is None:
        return
    detail = payload.model_dump(mode="json", exclude={"referral_id", "reference", "facts"})
    await service.apply_progress(session, referral_id=event.subject, kind=event.type, detail=detail)
