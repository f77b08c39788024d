"""Revocation that bites at once: the tokens of a disabled client, agency or person are refused
by every service within seconds, however long they have left to live.

Identity announces `access.revoked` (disabled; tokens issued before `not_before` refused for
good) and `access.restored` (enabled again) on `nrm.access.v1`. Every service consumes them
(consumer group `<service>.access`) into its own `access_subject` table, so the state survives
a restart and a service that starts later reads it from its database; each instance keeps a copy
in memory that `authenticate` consults on every request, refreshed when its consumer applies an
event and every few seconds from the table (another instance of the service may have applied
it). Events of one subject share a key, so they stay in order; a late duplicate is ignored by
its time.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import AccessRestored, AccessRevoked, SubjectType
from contracts.topics import ACCESS
from services.common.consumers import Consumer
from services.common.db import SessionFactory
from services.common.loops import Loop
from services.common.models import AccessSubject

TYPES = ("access.revoked", "access.restored")


def subject_key(subject_type: SubjectType, subject_id: str) -> str:
    """The events' CloudEvents subject (so their Kafka key): one subject's events stay in order."""
    return f"{subject_type}:{subject_id}"


def next_second(moment: datetime) -> datetime:
    """The first whole second after `moment`: tokens carry `iat` in whole seconds, so a token
    issued in the same second as a revocation is refused with the older ones."""
    return datetime.fromtimestamp(math.floor(moment.timestamp()) + 1, UTC)


@dataclass(frozen=True, slots=True)
class SubjectState:
    disabled: bool
    not_before: float | None  # epoch seconds
    changed_at: datetime


class Revocations:
    """This service's view of revoked subjects; `refusal()` is checked on every request."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._state: dict[tuple[str, str], SubjectState] = {}

    async def load(self) -> None:
        """(Re)read the whole state from the database (it holds revoked subjects only)."""
        async with self._sessions() as session:
            rows = await session.exec(select(AccessSubject))
            self._state = {(r.subject_type, r.subject_id): _state_of(r) for r in rows}

    def refusal(
        self, *, client_id: str, agency: str, subject: str, issued_at: float | None
    ) -> str | None:
        """Why a token with these claims is refused now, or None."""
        if not self._state:  # the usual case: nothing revoked
            return None
        checks: list[tuple[str, str]] = [("client", client_id), ("agency", agency)]
        if subject != client_id:  # a person signed in through a client
            checks.append(("person", subject))
        for key in checks:
            state = self._state.get(key)
            if state is None:
                continue
            if state.disabled:
                return f"{key[0]} disabled"
            if state.not_before is not None and (issued_at is None or issued_at < state.not_before):
                return "token revoked"
        return None

    def disabled(self, subject_type: SubjectType) -> frozenset[str]:
        """Ids of the subjects of a type that are disabled now (routing: absent agencies)."""
        return frozenset(
            sid for (kind, sid), s in self._state.items() if kind == subject_type and s.disabled
        )

    async def revoked(
        self, session: AsyncSession, event: CloudEvent, payload: AccessRevoked
    ) -> None:
        """Consumer handler, in the consumer's transaction: the subject is disabled now."""
        row = await _subject_row(session, event, payload)
        if row is None:
            return
        row.disabled = True
        if row.not_before is None or row.not_before < payload.not_before:
            row.not_before = payload.not_before
        row.changed_at = event.time
        session.add(row)

    async def restored(
        self, session: AsyncSession, event: CloudEvent, payload: AccessRestored
    ) -> None:
        """Consumer handler, in the consumer's transaction: the subject is enabled again."""
        row = await _subject_row(session, event, payload)
        if row is None:
            return
        row.disabled = False
        row.changed_at = event.time
        session.add(row)

    async def applied(self, event: CloudEvent) -> None:
        """After the consumer committed an event: take it into account at once."""
        await self.load()


async def _subject_row(
    session: AsyncSession, event: CloudEvent, payload: AccessRevoked | AccessRestored
) -> AccessSubject | None:
    """The subject's row to update (new if it has none), or None if `event` is older than its
    last change (redelivered after a newer one was applied)."""
    key = (payload.subject_type, payload.subject_id)
    row = await session.get(AccessSubject, key)
    if row is not None and row.changed_at > event.time:
        return None
    if row is None:
        row = AccessSubject(
            subject_type=key[0], subject_id=key[1], disabled=False, changed_at=event.time
        )
    return row


def access_consumer(service: str) -> Consumer[Revocations]:
    """A service's consumer group on the access topic (`<service>.access`), applying
    revocations; a service may declare more handlers on it (notify: recusals)."""
    consumer = Consumer[Revocations](
        f"{service}.access",
        service=service,
        topics=[ACCESS],
        summary="Revoked and restored clients, agencies and people: their tokens refused at once",
        background=True,
    )
    consumer.handles(AccessRevoked)(Revocations.revoked)
    consumer.handles(AccessRestored)(Revocations.restored)
    return consumer


def _state_of(row: AccessSubject) -> SubjectState:
    nb = row.not_before.timestamp() if row.not_before is not None else None
    return SubjectState(disabled=row.disabled, not_before=nb, changed_at=row.changed_at)


class RevocationRefresher(Loop):
    """Re-reads the table every few seconds: with several instances of a service, the one whose
    consumer applied an event is told at once, the others by this."""

    def __init__(self, revocations: Revocations, interval: float) -> None:
        super().__init__("revocations", interval)
        self._revocations = revocations

    async def tick(self) -> int:
        await self._revocations.load()
        return 0
