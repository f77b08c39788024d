"""Audit's Kafka handler: every event on every `nrm.*.v1` topic joins the chain once."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from services.audit import service
from services.common.bus import CURRENT_RECORD


async def on_event(session: AsyncSession, event: CloudEvent) -> None:
    event.payload()  # validates: an event that does not fit its schema is dead-lettered instead
    record = CURRENT_RECORD.get()
    assert record is not None, "audit handlers run inside ConsumerRunner"
    await service.append(
        session, event=event, topic=record.topic, partition=record.partition, offset=record.offset
    )
