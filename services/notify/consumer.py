"""Notify's Kafka handlers: routing decisions become deliveries; recusals hide them;
identification and investigation events reach every recipient."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import AdminChanged, ReferralRouted
from services.notify import service

RECUSED = "referral.recused"


async def on_routing(session: AsyncSession, event: CloudEvent) -> None:
    payload = event.payload()
    if isinstance(payload, ReferralRouted):
        await service.apply_routed(session, routed=payload)


async def on_referral(session: AsyncSession, event: CloudEvent) -> None:
    """Identification and investigation events (the consumer takes only `PROGRESS_TYPES`)."""
    if event.type not in service.PROGRESS_TYPES or event.subject is None:
        return
    detail = event.payload().model_dump(mode="json", exclude={"referral_id", "reference", "facts"})
    await service.apply_progress(session, referral_id=event.subject, kind=event.type, detail=detail)


async def on_access(session: AsyncSession, event: CloudEvent) -> None:
    """`admin.changed` `referral.recused` (intake): `actor` is the person's `sub`."""
    payload = event.payload()
    if isinstance(payload, AdminChanged) and payload.action == RECUSED and payload.actor:
        await service.recuse(session, referral_id=payload.target_id, subject=payload.actor)
