"""Notify's Kafka handler: routing decisions become deliveries."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import ReferralRouted
from services.notify import service


async def on_routing(session: AsyncSession, event: CloudEvent) -> None:
    payload = event.payload()
    if isinstance(payload, ReferralRouted):
        await service.apply_routed(session, routed=payload)
