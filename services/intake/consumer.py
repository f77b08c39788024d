"""Intake learns recipients from `referral.routed` and their progress from case events."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import DeliveryNotified, DeliveryRef, ReferralRouted
from services.intake import service


async def on_routing(session: AsyncSession, event: CloudEvent) -> None:
    payload = event.payload()
    if isinstance(payload, ReferralRouted):
        await service.apply_routed(session, routed=payload)


async def on_case_event(session: AsyncSession, event: CloudEvent) -> None:
    payload = event.payload()
    if isinstance(payload, DeliveryNotified):
        await service.apply_case_event(session, event=payload, status="notified")
    elif isinstance(payload, DeliveryRef) and type(payload) in service.CASE_STATUS:
        await service.apply_case_event(
            session, event=payload, status=service.CASE_STATUS[type(payload)]
        )
