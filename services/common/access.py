"""The access-audit emitter: every grant, denial, failed authentication and admin change becomes
an event on `nrm.access.v1`, written through the emitting service's outbox."""

from dataclasses import dataclass

from contracts.cloudevents import CloudEvent
from contracts.events import Payload
from services.common.db import SessionFactory, transaction
from services.common.outbox import add_event


@dataclass(frozen=True, slots=True)
class AccessAudit:
    service: str
    sessions: SessionFactory

    async def emit(
        self, payload: Payload, *, subject: str | None = None, agency: str | None = None
    ) -> None:
        """Record in a transaction of its own: a denial is audited even though the request fails."""
        event = CloudEvent.new(source=self.service, payload=payload, subject=subject, agency=agency)
        async with transaction(self.sessions) as session:
            await add_event(session, event)
