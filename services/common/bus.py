"""The Kafka bus on aiokafka: producer, topic bootstrap, and the idempotent consumer runner.

Delivery is at-least-once; exactly-once *effect* comes from the outbox on the producing side and
from `ConsumerRunner` on the consuming side, which stores the processed event id in the same
database transaction as the handler's effect and commits the offset only afterwards.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, TopicAlreadyExistsError
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent, InvalidEvent
from contracts.topics import ACCESS, CASE_EVENTS, CATALOGUE, DEADLETTER, REFERRALS, ROUTING
from services.common.db import SessionFactory, insert_ignore, transaction
from services.common.models import ProcessedEvent, utcnow
from services.common.tracing import event_span

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
AfterApply = Callable[[CloudEvent], Awaitable[None]]
# Called once per batch, in its transaction, with the events about to be handled: a service
# loads what they will need in a few queries rather than a few per event. Only a prefetch:
# handlers must give the same result without it (a record retried alone goes without).
Prepare = Callable[[AsyncSession, list[CloudEvent]], Awaitable[None]]

CONSUMED = Counter(
    "nrm_events_consumed_total", "Records handled by a consumer", ["consumer", "outcome"]
)
RETRIES = Counter("nrm_consumer_retries_total", "Handler attempts that failed", ["consumer"])

# Errors that say "the database or network is away", not "this record is bad": retried without
# limit so an outage never sends good records to the dead-letter topic.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    OSError,
    TimeoutError,
)


# Every consumer group the services run, by topic (`ServiceRuntime.consume` refuses others). An
# outbox row counts as delivered, and is no longer replayed, once all of its topic's groups have
# committed past it.
CONSUMER_GROUPS: dict[str, tuple[str, ...]] = {
    REFERRALS.name: ("router.referrals", "notify.referrals", "insights", "audit"),
    ROUTING.name: ("intake.routing", "notify.routing", "insights", "audit"),
    CASE_EVENTS.name: ("intake.case-events", "router.case-events", "insights", "audit"),
    ACCESS.name: (
        "identity.access",
        "intake.access",
        "router.access",
        "notify.access",
        "audit.access",
        "insights.access",
        "audit",
    ),
}


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, TRANSIENT_ERRORS)


def create_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas. No idempotence: Tansu lacks it and the
    outbox plus idempotent consumers give the exactly-once effect (DEVELOPERS.md)."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": False,
        "linger_ms": 2,
        "request_timeout_ms": 15_000,
        "client_id": "nrm",
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def ensure_topics(
    bootstrap: str, *, partitions: int, names: Iterable[str] | None = None
) -> None:
    """Create the catalogue's topics (or `names`) if missing; existing topics are left alone."""
    wanted = list(names) if names is not None else [t.name for t in CATALOGUE]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return
        new = [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new)
        log.info("topics created", extra={"topics": missing, "partitions": partitions})
    finally:
        await admin.close()


async def broker_reachable(bootstrap: str) -> None:
    """Raise unless the broker answers a metadata request (for health checks)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def describe_error(exc: BaseException) -> str:
    """An error summary safe to put in headers and logs: no input values, which may be data."""
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        return f"invalid {exc.title}: " + "; ".join(parts)
    return f"{type(exc).__name__}: {exc}"[:1000]


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> bytes | None:
    return next((v for k, v in record.headers or () if k == name), None)


# The Kafka record behind the event a handler is applying, for handlers that record where an
# event came from (audit keeps topic, partition and offset).
CURRENT_RECORD: ContextVar["ConsumerRecord[bytes, bytes] | None"] = ContextVar(
    "nrm_current_record", default=None
)


class ConsumerRunner:
    """Consumes `topics` in consumer group `name` and applies each event once.

    Per fetch: decode → in a DB transaction {record the event ids, skipping those already
    processed; the handler for each new one} → after the batch, commit every partition's offset
    at once. Up to `batch_size` records, across the partitions of one fetch (each partition's
    in order), share one transaction; if one of them fails, the ones before it are applied
    without it and it is then applied on its own, so one bad record affects only itself. A
    record that cannot be decoded or validated goes straight to the dead-letter topic; one whose
    handler fails `max_attempts` times goes there too; transient database/network errors are
    retried until they pass.

    `fetch_max_wait_ms` bounds how long a fetch waits for data: it sets the idle delivery delay
    on brokers that answer an idle fetch only when the wait expires (Tansu does);
    `fetch_min_bytes` lets a fetch gather that much within the wait before it is answered.
    `session_timeout_ms` also sets how long Tansu waits for members when a group forms (half of
    it), so tests and the embedded stack use a short one; Apache Kafka requires >= 6000.
    """

    def __init__(
        self,
        *,
        name: str,
        topics: Iterable[str],
        handler: Handler,
        sessions: SessionFactory,
        bootstrap: str,
        producer: AIOKafkaProducer,
        max_attempts: int = 5,
        retry_backoff: float = 0.1,
        after_apply: AfterApply | None = None,
        prepare: Prepare | None = None,
        fetch_max_wait_ms: int = 10,
        fetch_min_bytes: int = 1,
        session_timeout_ms: int = 10_000,
        batch_size: int = 100,
        types: Iterable[str] | None = None,
    ) -> None:
        self.name = name
        # Only events of these types (by the `ce_type` header) are applied; the rest of the
        # topic is skipped unread, with no transaction and no ledger row.
        self._types = frozenset(t.encode() for t in types) if types is not None else None
        self.topics = list(topics)
        self._handler = handler
        self._sessions = sessions
        self._producer = producer
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._after_apply = after_apply
        self._prepare = prepare
        self._batch_size = batch_size
        self._consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=bootstrap,
            group_id=name,
            client_id=name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            fetch_max_wait_ms=fetch_max_wait_ms,
            fetch_min_bytes=fetch_min_bytes,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 3),
        )
        # On the table, not the ORM class: an ORM insert re-processes every row's values
        # through the mapper (~6% of a router batch's time).
        ledger = ProcessedEvent.__table__  # type: ignore[attr-defined]
        self._claim = insert_ignore(sessions.kw["bind"].dialect.name, ledger)
        self._claim_many = self._claim.returning(ledger.c.event_id)
        self._stopping = asyncio.Event()
        self._joining: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        """Join the group (aiokafka waits for the partitions' assignment) and start reading."""
        self.begin()
        await self.joined()

    def begin(self) -> None:
        """Start joining the group without waiting: forming a group takes the broker a moment
        (Tansu waits half the session timeout for members), so the embedded stack lets every
        service's groups form at once and then awaits `joined` for all of them."""
        if self._joining is None:
            self._joining = asyncio.create_task(self._join(), name=f"join:{self.name}")

    async def joined(self) -> None:
        assert self._joining is not None, "begin() first"
        await asyncio.shield(self._joining)

    async def _join(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"consumer:{self.name}")

    async def stop(self) -> None:
        """Finish the record in hand, commit what was applied, leave the group."""
        self._stopping.set()
        if self._joining is not None and not self._joining.done():
            self._joining.cancel()  # stopped while still joining (a failed start)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._joining
        if self._task is not None:
            await self._task
            self._task = None
        await self._consumer.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            batch = await self._consumer.getmany(timeout_ms=200)
            if self._consumer.assignment():
                self.ready.set()
            if batch:
                offsets = await self._process_batch(batch)
                if offsets:
                    await self._commit(offsets)

    async def _process_batch(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> dict[TopicPartition, int]:
        """Apply what one fetch returned, each partition's records in order, every partition in
        the same transactions; returns the offsets to commit (the next one to read)."""
        types = self._types
        wanted = [
            r
            for records in batch.values()
            for r in records
            if types is None or _header(r, "ce_type") in types
        ]
        done = await self._apply_records(wanted)
        last_done = {TopicPartition(r.topic, r.partition): r.offset for r in wanted[:done]}
        unfinished = {TopicPartition(r.topic, r.partition) for r in wanted[done:]}
        offsets: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            if records and tp not in unfinished:
                offsets[tp] = records[-1].offset + 1  # the skipped ones are done too
            elif tp in last_done:
                offsets[tp] = last_done[tp] + 1
        return offsets

    async def _apply_records(self, records: list[ConsumerRecord[bytes, bytes]]) -> int:
        """Apply records in order, `batch_size` per transaction; returns how many (from the
        first) were done with. A record that cannot go in with the others is applied on its own
        (retried, or dead-lettered), and batching resumes after it."""
        done = 0
        while done < len(records):
            if self._stopping.is_set() and done:
                break
            chunk = records[done : done + self._batch_size]
            applied = await self._apply_chunk(chunk) if len(chunk) > 1 else 0
            done += applied
            if applied == len(chunk):
                continue
            if self._stopping.is_set() and done:
                break
            if not await self._process(records[done]):
                break
            done += 1
        return done

    async def _apply_chunk(self, records: list[ConsumerRecord[bytes, bytes]]) -> int:
        """Apply records in one transaction; returns how many, from the first, were applied.

        The event ids are claimed with one statement. If a handler fails, the transaction is
        rolled back and the records before the failing one are applied again without it (no
        savepoint per record on the hot path: failures are rare); the caller takes the failing
        one on its own. A record that does not decode ends the chunk before it."""
        events: list[CloudEvent] = []
        for record in records:
            try:
                events.append(CloudEvent.from_kafka(headers=record.headers, value=record.value))
            except InvalidEvent:
                break
        while events:
            outcomes: list[tuple[CloudEvent, bool]] = []
            try:
                async with transaction(self._sessions, background=True) as session:
                    claimed = await self._claim_all(session, events)
                    fresh = {e.id: e for e in events if e.id in claimed}
                    if self._prepare is not None and fresh:
                        await self._prepare(session, list(fresh.values()))
                    for event, record in zip(events, records, strict=False):
                        applied = event.id in claimed
                        if applied:
                            claimed.discard(event.id)  # a second copy in the chunk is a duplicate
                            await self._handle(session, event, record)
                        outcomes.append((event, applied))
            except Exception as exc:
                failed = len(outcomes)  # the record in hand; all of them if the commit failed
                log.info(
                    "chunk not applied whole",
                    extra={
                        "consumer": self.name,
                        "size": len(events),
                        "failed_at": failed,
                        "error": describe_error(exc),
                    },
                )
                if failed == 0 or failed >= len(events) or _is_transient(exc):
                    return 0
                events = events[:failed]
                continue
            for event, applied in outcomes:
                CONSUMED.labels(self.name, "applied" if applied else "duplicate").inc()
                if applied and self._after_apply is not None:
                    await self._after_apply(event)
            return len(events)
        return 0

    async def _claim_all(self, session: AsyncSession, events: list[CloudEvent]) -> set[str]:
        """Record the events as processed, in one statement; the ids that were not yet."""
        now = utcnow()
        rows = [{"consumer": self.name, "event_id": e.id, "processed_at": now} for e in events]
        # Parameters as a list, not `.values(rows)`: SQLAlchemy's "insertmanyvalues" builds the
        # multi-row statement from the cached compiled one (a compile per batch cost ~10% of the
        # embedded stack's CPU at 25 referrals/s, cProfile).
        result = await (await session.connection()).execute(self._claim_many, rows)
        return set(result.scalars())

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            # Partition moved to another member; it re-reads from the last committed offset and
            # the processed-event ledger drops what was already applied.
            log.warning("offset commit failed after rebalance", extra={"consumer": self.name})

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Apply or dead-letter one record; False if abandoned because the runner is stopping."""
        try:
            event = CloudEvent.from_kafka(headers=record.headers, value=record.value)
        except InvalidEvent as exc:
            await self._dead_letter(record, exc)
            return True
        failures = 0
        while True:
            try:
                applied = await self._apply(event, record)
            except (InvalidEvent, ValidationError) as exc:
                await self._dead_letter(record, exc)
                return True
            except Exception as exc:
                RETRIES.labels(self.name).inc()
                if _is_transient(exc):
                    # The database or network is away: wait for it, however long, unless we
                    # are asked to stop (the record is then re-read on the next start).
                    log.warning(
                        "transient error, retrying",
                        extra={
                            "consumer": self.name,
                            "event_id": event.id,
                            "error": describe_error(exc),
                        },
                    )
                    if self._stopping.is_set():
                        return False
                    await asyncio.sleep(min(self._retry_backoff * 2**failures, 5.0))
                    failures = min(failures + 1, 10)
                    continue
                failures += 1
                if failures >= self._max_attempts:
                    log.exception(
                        "handler failed, dead-lettering",
                        extra={"consumer": self.name, "event_id": event.id, "type": event.type},
                    )
                    await self._dead_letter(record, exc)
                    return True
                await asyncio.sleep(self._retry_backoff * 2 ** (failures - 1))
                continue
            CONSUMED.labels(self.name, "applied" if applied else "duplicate").inc()
            if applied and self._after_apply is not None:
                await self._after_apply(event)
            return True

    async def _apply(self, event: CloudEvent, record: ConsumerRecord[bytes, bytes]) -> bool:
        async with transaction(self._sessions, background=True) as session:
            return await self._claim_and_handle(session, event, record)

    async def _claim_and_handle(
        self, session: AsyncSession, event: CloudEvent, record: ConsumerRecord[bytes, bytes]
    ) -> bool:
        # Claim the event id first: a duplicate costs one statement and no handler call, and
        # two members racing on a redelivered record serialize on the primary key.
        conn = await session.connection()
        row = {"consumer": self.name, "event_id": event.id, "processed_at": utcnow()}
        claimed = await conn.execute(self._claim, row)  # the statement built once, as the batch's
        if not claimed.rowcount:
            return False
        await self._handle(session, event, record)
        return True

    async def _handle(
        self, session: AsyncSession, event: CloudEvent, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        token = CURRENT_RECORD.set(record)
        try:
            with event_span(event, self.name):
                log.debug(
                    "handling event",
                    extra={
                        "consumer": self.name,
                        "event_id": event.id,
                        "type": event.type,
                        "subject": event.subject,
                    },
                )
                await self._handler(session, event)
        finally:
            CURRENT_RECORD.reset(token)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], exc: BaseException) -> None:
        error = describe_error(exc)
        headers = [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")]
        headers += [
            ("dlq_error", error.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_consumer", self.name.encode()),
        ]
        # Await the broker's ack before the offset can be committed: the record is never lost.
        while True:
            try:
                await self._producer.send_and_wait(
                    DEADLETTER.name, value=record.value, key=record.key, headers=headers
                )
                break
            except Exception as send_exc:
                log.warning(
                    "dead-letter publish failed, retrying",
                    extra={"consumer": self.name, "error": describe_error(send_exc)},
                )
                await asyncio.sleep(1.0)
        CONSUMED.labels(self.name, "deadlettered").inc()
        log.error(
            "record dead-lettered",
            extra={
                "consumer": self.name,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error": error,
            },
        )
