"""Notify's Kafka handlers: routing decisions become deliveries; recusals hide them;
identification and investigation events reach every recipient; erasures empty deliveries and
tell their recipients."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import AdminChanged, ReferralErased, ReferralRouted
from services.common.bus import Handler
from services.common.erasure import ERASED, ErasureLedger
from services.notify import service

RECUSED = "referral.recused"
REFERRAL_TYPES = (*service.PROGRESS_TYPES, ERASED)


async def on_routing(session: AsyncSession, event: CloudEvent) -> None:
    payload = event.payload()
    if isinstance(payload, ReferralRouted):
        await service.apply_routed(session, routed=payload)


def referral_handler(ledger: ErasureLedger) -> Handler:
    """Identification, investigation and erasure events (the consumer takes only
    `REFERRAL_TYPES`); an erasure is written to the ledger before its transaction commits."""

    async def on_referral(session: AsyncSession, event: CloudEvent) -> None:
        if event.type == ERASED:
            erased = event.payload()
            assert isinstance(erased, ReferralErased)
            ledger.record(referral_id=erased.referral_id, basis=erased.basis, erased_at=event.time)
            await service.apply_erased(session, referral_id=erased.referral_id)
            return
        if event.type not in service.PROGRESS_TYPES or event.subject is None:
            return
        detail = event.payload().model_dump(
            mode="json", exclude={"referral_id", "reference", "facts"}
        )
        await service.apply_progress(
            session, referral_id=event.subject, kind=event.type, detail=detail
        )

    return on_referral


async def on_access(session: AsyncSession, event: CloudEvent) -> None:
    """`admin.changed` `referral.recused` (intake): `actor` is the person's `sub`."""
    payload = event.payload()
    if isinstance(payload, AdminChanged) and payload.action == RECUSED and payload.actor:
        await service.recuse(session, referral_id=payload.target_id, subject=payload.actor)
