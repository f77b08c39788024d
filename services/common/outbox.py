"""The transactional outbox: events written with the state change, published by a relay.

Writers call `add_event(session, event)` inside their transaction. After the commit the relay
is woken at once (in-process signal; PostgreSQL `NOTIFY` for other processes; a slow poll as the
fallback). The relay first numbers committed rows (`ce_sequence`: per source, gap-free, in the
order the relay sees them commit, under the source's counter row lock, in a transaction of its
own so a number is never given twice), then publishes numbered rows in id order and marks them
published only after the broker acknowledged them. Per key, record n+1 is not sent before record
n was acknowledged, so a failed send can never let a later record of the same referral overtake
an earlier one.

Replay (`NRM_REPLAY_ON_START`, set by `nrm up` for its in-memory broker): a published row counts
as delivered only once every consumer group of its topic (`CONSUMER_GROUPS`) has committed an
offset past it; until then it is kept, and `replay()` on start publishes it again. Consumers drop
the duplicates by event id. Without replay a row is delivered when the broker acknowledges it.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Counter
from sqlalchemy import Table, bindparam, delete, func, text, update
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.topics import topic_for_type
from services.common.db import (
    CommitSignal,
    SessionFactory,
    insert_ignore,
    insert_many,
    is_sqlite,
    transaction,
    truncate_wal,
)
from services.common.models import EventCounter, OutboxRecord, ProcessedEvent, utcnow
from services.common.tracing import current_traceparent

log = logging.getLogger(__name__)

PUBLISHED = Counter("nrm_outbox_published_total", "Outbox rows acknowledged by the broker", ["db"])
SEND_FAILURES = Counter("nrm_outbox_send_failures_total", "Failed outbox publish rounds", ["db"])
REPLAYED = Counter("nrm_outbox_replayed_total", "Outbox rows published again on start", ["db"])
ABANDONED = Counter(
    "nrm_outbox_abandoned_total",
    "Rows no consumer group confirmed within the replay window (no longer replayed)",
    ["db"],
)

NOTIFY_CHANNEL = "nrm_outbox"
COMMITTED = CommitSignal("outbox")  # wakes this process's relays when staged events commit


async def add_event(session: AsyncSession, event: CloudEvent, *, topic: str | None = None) -> None:
    """Stage `event` for publication; it is published only if the caller's transaction commits."""
    session.add(OutboxRecord(**_row(event, topic)))
    await _signal(session)


async def add_events(session: AsyncSession, events: list[CloudEvent]) -> None:
    """Stage many events in one executemany (group commits write hundreds at once)."""
    if not events:
        return
    await insert_many(session, OutboxRecord, [_row(e, None) for e in events])
    await _signal(session)


def outbox_row(event: CloudEvent) -> dict[str, Any]:
    """The outbox row of `event`, made now (it carries the current trace), for `write_rows`."""
    return _row(event, None)


def write_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows made by `outbox_row`, in order, with one statement: for writes staged
    until the transaction commits (`db.staged`), which run in the session's sync context."""
    if not rows:
        return
    conn = session.connection()
    conn.execute(_INSERT, rows)
    if COMMITTED.mark(session) and conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))  # delivered to listeners at commit


_INSERT = OutboxRecord.__table__.insert()  # type: ignore[attr-defined]


async def forget_delivered(session: AsyncSession, *, key: str) -> int:
    """Delete the outbox rows of one key (a referral) that every consumer already has, in the
    caller's transaction: after an erasure nothing of the referral stays in the service's
    database. A row not delivered yet stays until it is (nothing is lost); the purge removes it
    after the retention period. Returns how many rows went."""
    result = await session.exec(
        delete(OutboxRecord).where(
            col(OutboxRecord.key) == key, col(OutboxRecord.delivered_at).is_not(None)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _row(event: CloudEvent, topic: str | None) -> dict[str, Any]:
    record = event.to_kafka()
    headers = {k: v.decode() for k, v in record.headers}
    if "traceparent" not in headers and (traceparent := current_traceparent()) is not None:
        headers["traceparent"] = traceparent  # the request's or handled event's trace
    return {
        "event_id": event.id,
        "event_type": event.type,
        "topic": topic or topic_for_type(event.type).name,
        "key": record.key.decode() if record.key is not None else None,
        "headers": headers,
        "value": record.value,
        "created_at": utcnow(),
    }


async def _signal(session: AsyncSession) -> None:
    if COMMITTED.mark(session):
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            # Delivered to listeners only when this transaction commits.
            conn = await session.connection()
            await conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


class OutboxRelay:
    """Publishes one database's outbox. Safe to run in several replicas on PostgreSQL.

    `groups` (topic -> consumer groups) turns on delivery tracking for replay; `bootstrap` is
    then needed to read the groups' committed offsets."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        sessions: SessionFactory,
        producer: AIOKafkaProducer,
        name: str = "outbox",
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retention: timedelta = timedelta(days=1),
        groups: Mapping[str, Sequence[str]] | None = None,
        bootstrap: str | None = None,
        delivery_check_interval: float = 1.0,
        replay_window: timedelta = timedelta(days=7),
        processed_retention: timedelta = timedelta(days=8),
        source: str | None = None,
        erased: Callable[[], Mapping[str, datetime]] | None = None,
    ) -> None:
        """`source`: the CloudEvents `source` (an absolute URI) every published event carries,
        whatever its row says (the service's short name, as written by the code). `erased`: when
        this service recorded each erasure (the erasure ledger): a referral's rows written
        before then go as soon as they are delivered."""
        if groups is not None and bootstrap is None:
            raise ValueError("delivery tracking (groups) needs the broker's bootstrap")
        self.name = name
        self._source = source.encode() if source is not None else None
        self._engine = engine
        self._sessions = sessions
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention = retention
        self._groups = groups
        self._bootstrap = bootstrap
        self._check_interval = delivery_check_interval
        self._replay_window = replay_window
        self._processed_retention = processed_retention
        self._admin: AIOKafkaAdminClient | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._listen_conn: Any = None
        self._table: Table = OutboxRecord.__table__  # type: ignore[attr-defined]
        self._erased = erased
        self._sql = _Statements(self._table, name=name, batch_size=batch_size)

    @property
    def tracks_delivery(self) -> bool:
        return self._groups is not None

    async def start(self) -> None:
        COMMITTED.subscribe(self._engine, self._wake)
        if not is_sqlite(self._engine):
            await self._listen()
        self._task = asyncio.create_task(self._run(), name=f"relay:{self.name}")

    async def stop(self, *, flush: bool = True, timeout: float = 10.0) -> None:
        """Stop; with `flush`, first publish what is pending (bounded by `timeout`). With
        delivery tracking, what consumers have not confirmed stays for the next start's replay."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if flush:
            try:
                async with asyncio.timeout(timeout):
                    while await self.publish_batch():
                        pass
                    if self.tracks_delivery:
                        await self.confirm_delivery()
            except Exception:
                log.warning("outbox not fully flushed on stop", extra={"relay": self.name})
        COMMITTED.unsubscribe(self._engine, self._wake)
        if self._listen_conn is not None:
            await self._listen_conn.close()
            self._listen_conn = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None

    async def replay(self, *, timeout: float) -> int:
        """Publish again every row no consumer group is known to have read (the broker may have
        lost it), then everything pending, before the caller serves. Returns how many rows were
        replayed; gives up waiting after `timeout` seconds (the relay carries on afterwards)."""
        async with transaction(self._sessions, background=True) as session:
            result = await session.exec(
                update(OutboxRecord)
                .where(col(OutboxRecord.delivered_at).is_(None))
                .where(col(OutboxRecord.published_at).is_not(None))
                .values(published_at=None, kafka_partition=None, kafka_offset=None)
            )
        replayed = int(getattr(result, "rowcount", 0) or 0)
        REPLAYED.labels(self.name).inc(replayed)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        backoff = 0.1
        while True:
            try:
                if not await self.publish_batch():
                    break
                backoff = 0.1
            except Exception as exc:
                if loop.time() + backoff > deadline:
                    log.warning(
                        "outbox replay unfinished, the relay carries on",
                        extra={"relay": self.name, "error": f"{type(exc).__name__}: {exc}"[:300]},
                    )
                    break
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if loop.time() > deadline:
                log.warning(
                    "outbox replay unfinished, the relay carries on", extra={"relay": self.name}
                )
                break
        if replayed:
            log.info("outbox replayed", extra={"relay": self.name, "rows": replayed})
        return replayed

    async def _listen(self) -> None:
        conn = await self._engine.connect()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
        self._listen_conn = conn

    async def _run(self) -> None:
        backoff = 0.1
        last_purge = last_check = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                sent = await self.publish_batch()
                backoff = 0.1
            except Exception as exc:
                SEND_FAILURES.labels(self.name).inc()
                log.warning(
                    "outbox publish failed, retrying",
                    extra={"relay": self.name, "error": f"{type(exc).__name__}: {exc}"[:300]},
                )
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self.tracks_delivery and loop.time() - last_check > self._check_interval:
                last_check = loop.time()
                try:
                    await self.confirm_delivery()
                except Exception as exc:
                    log.warning(
                        "delivery check failed, will retry",
                        extra={"relay": self.name, "error": f"{type(exc).__name__}: {exc}"[:300]},
                    )
            if loop.time() - last_purge > 60:
                last_purge = loop.time()
                try:
                    await self.purge()
                except Exception as exc:
                    log.warning(
                        "outbox purge failed, will retry",
                        extra={"relay": self.name, "error": f"{type(exc).__name__}: {exc}"[:300]},
                    )
            if sent < self._batch_size:
                idle = self._poll_interval
                if self.tracks_delivery:
                    idle = min(idle, self._check_interval)
                await self._sleep(idle)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def publish_batch(self) -> int:
        """Number what committed, then publish up to one batch; returns how many rows the
        broker acknowledged."""
        if is_sqlite(self._engine):
            # One relay per SQLite file: number and read under the write lock, send and mark
            # without holding it while the broker is slow. (Statements under the write lock run
            # on the loop's thread, so the check costs no read transaction of its own.)
            async with transaction(self._sessions, background=True) as session:
                conn = await session.connection()
                if (await conn.execute(self._sql.unnumbered_any)).first() is not None:
                    await self._number(session)
                rows = await self._pending(session, lock=False)
            if not rows:
                return 0
            acked = await self._send(rows)
            async with transaction(self._sessions, background=True) as session:
                forgotten = await self._mark(session, acked)
            if forgotten:
                await truncate_wal(self._engine, background=True)
            return len(acked)
        async with self._sessions() as session:
            conn = await session.connection()
            unnumbered = (await conn.execute(self._sql.unnumbered_any)).first()
        if unnumbered is not None:
            # Committed before anything is sent: a number published is never given again.
            async with transaction(self._sessions, background=True) as session:
                await self._number(session)
        async with transaction(self._sessions, background=True) as session:
            rows = await self._pending(session, lock=True)
            rows = await self._unblocked(session, rows)
            if not rows:
                return 0
            acked = await self._send(rows)
            await self._mark(session, acked)
        return len(acked)

    async def _forget_erased(self, session: AsyncSession, *, delivered_at: datetime) -> int:
        """Delete the rows just marked delivered (at `delivered_at`) that an erased referral's
        service wrote before the erasure. They were still undelivered then, so the erasure had
        to leave them (nothing is lost); now every consumer has them, they go at once rather
        than after the retention period, and with them any free text they carried. Rows written
        after it (the erasure's own announcement, notices) carry nothing personal and stay."""
        erased = self._erased() if self._erased is not None else {}
        if not erased:
            return 0
        keys = await session.exec(
            select(col(OutboxRecord.key))
            .where(col(OutboxRecord.delivered_at) == delivered_at)
            .distinct()
        )
        gone = 0
        for key in [k for k in keys if k is not None and k in erased]:
            result = await session.exec(
                delete(OutboxRecord)
                .where(col(OutboxRecord.key) == key)
                .where(col(OutboxRecord.created_at) <= erased[key])
                .where(col(OutboxRecord.delivered_at).is_not(None))
            )
            gone += int(getattr(result, "rowcount", 0) or 0)
        return gone

    async def _number(self, session: AsyncSession) -> int:
        """Give committed, unnumbered rows the source's next numbers, in id order, holding the
        counter row's lock (PostgreSQL; SQLite has one writer at a time anyway)."""
        conn = await session.connection()
        sql = self._sql
        last = (await conn.execute(sql.counter)).scalar()
        if last is None:
            dialect = self._engine.dialect.name
            await conn.execute(
                insert_ignore(dialect, EventCounter).values(source=self.name, last=0)
            )
            last = (await conn.execute(sql.counter)).scalar_one()
        # A statement after the lock: on PostgreSQL it sees what another relay numbered and
        # committed while this one waited for the lock.
        ids = list((await conn.execute(sql.unnumbered)).scalars())
        if not ids:
            return 0
        await conn.execute(
            sql.number, [{"row_id": row_id, "number": last + n} for n, row_id in enumerate(ids, 1)]
        )
        await conn.execute(sql.count_up, {"last": last + len(ids)})
        return len(ids)

    async def _pending(self, session: AsyncSession, *, lock: bool) -> list[Any]:
        """Numbered rows not published yet, oldest first: rows with the columns `_send` uses."""
        conn = await session.connection()
        return list(await conn.execute(self._sql.pending_locked if lock else self._sql.pending))

    async def _unblocked(self, session: AsyncSession, rows: list[Any]) -> list[Any]:
        """Keep, per key, only the claimed rows that come before any row another replica holds."""
        keys = {r.key for r in rows if r.key is not None}
        if not keys:
            return rows
        max_id = max(r.id or 0 for r in rows)
        pending = await session.exec(
            select(col(OutboxRecord.id), col(OutboxRecord.key))
            .where(col(OutboxRecord.published_at).is_(None))
            .where(col(OutboxRecord.key).in_(keys))
            .where(col(OutboxRecord.id) <= max_id)
            .order_by(col(OutboxRecord.id))
        )
        claimed = {r.id for r in rows}
        blocked_after: dict[str, int | None] = {}
        for row_id, key in pending:
            if row_id not in claimed and key is not None and key not in blocked_after:
                blocked_after[key] = row_id
        return [
            r
            for r in rows
            if r.key is None
            or r.key not in blocked_after
            or (r.id or 0) < (blocked_after[r.key] or 0)
        ]

    async def _send(self, rows: Sequence[Any]) -> list[tuple[int, int, int]]:
        """Send in waves (the n-th row of every key in wave n); stop a key at its first failure.

        Returns (id, partition, offset) of the rows acknowledged. Raises only if nothing at all
        was acknowledged.
        """
        by_key: dict[Any, list[Any]] = defaultdict(list)
        for row in rows:
            by_key[row.key if row.key is not None else ("no-key", row.id)].append(row)
        queues = list(by_key.values())
        acked: list[tuple[int, int, int]] = []
        failed: set[int] = set()
        error: BaseException | None = None
        wave = 0
        while True:
            batch = [
                (i, q[wave]) for i, q in enumerate(queues) if wave < len(q) and i not in failed
            ]
            if not batch:
                break
            futures: list[Any] = []
            for _, row in batch:
                headers = [(k, v.encode()) for k, v in row.headers.items()]
                if self._source is not None:
                    headers = [(k, self._source if k == "ce_source" else v) for k, v in headers]
                headers.append(("ce_sequence", str(row.sequence).encode()))
                try:
                    futures.append(
                        await self._producer.send(
                            row.topic,
                            value=row.value,
                            key=row.key.encode() if row.key is not None else None,
                            headers=headers,
                        )
                    )
                except Exception as exc:
                    futures.append(_failed(exc))
            results = await asyncio.gather(*futures, return_exceptions=True)
            for (i, row), result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    failed.add(i)
                    error = result
                else:
                    acked.append((row.id or 0, result.partition, result.offset))
            wave += 1
        if not acked and error is not None:
            raise error
        if error is not None:
            log.warning("outbox partly published", extra={"relay": self.name, "acked": len(acked)})
        return acked

    async def _mark(self, session: AsyncSession, acked: list[tuple[int, int, int]]) -> int:
        """Record where the broker put each row; returns how many rows of erased referrals
        went with it (delivered at once when no delivery is tracked)."""
        if not acked:
            return 0
        now = utcnow()
        delivered = None if self.tracks_delivery else now
        conn = await session.connection()
        await conn.execute(
            self._sql.mark,
            [
                {"row_id": row_id, "at": now, "part": part, "off": off, "done": delivered}
                for row_id, part, off in acked
            ],
        )
        PUBLISHED.labels(self.name).inc(len(acked))
        return 0 if delivered is None else await self._forget_erased(session, delivered_at=now)

    async def confirm_delivery(self) -> int:
        """Mark delivered the published rows every consumer group of their topic has committed
        past (read from the broker). Returns how many rows were marked."""
        assert self._groups is not None and self._bootstrap is not None
        async with self._sessions() as session:
            spots = list(
                await session.exec(
                    select(
                        col(OutboxRecord.topic),
                        col(OutboxRecord.kafka_partition),
                        func.min(col(OutboxRecord.kafka_offset)),
                    )
                    .where(col(OutboxRecord.delivered_at).is_(None))
                    .where(col(OutboxRecord.published_at).is_not(None))
                    .group_by(col(OutboxRecord.topic), col(OutboxRecord.kafka_partition))
                )
            )
        if not spots:
            return 0
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap, client_id=f"{self.name}-relay"
            )
            await self._admin.start()
        read_up_to: dict[tuple[str, int], int] = {}
        by_topic: dict[str, list[TopicPartition]] = defaultdict(list)
        for topic, partition, _ in spots:
            if partition is not None:
                by_topic[topic].append(TopicPartition(topic, partition))
        for topic, partitions in by_topic.items():
            groups = self._groups.get(topic, ())
            for tp in partitions:
                # Lowered to each group's committed offset; a topic no group reads is
                # delivered once the broker has it.
                read_up_to[tp.topic, tp.partition] = 2**62
            for group in groups:
                offsets = await self._admin.list_consumer_group_offsets(
                    group, partitions=partitions
                )
                for tp in partitions:
                    found = offsets.get(tp)
                    committed = found.offset if found is not None else -1
                    key = (tp.topic, tp.partition)
                    read_up_to[key] = min(read_up_to[key], committed)
        marked = 0
        todo = [
            (topic, partition, upto)
            for topic, partition, lowest in spots
            if partition is not None
            and lowest is not None
            and (upto := read_up_to.get((topic, partition), -1)) > lowest
        ]
        if not todo:
            return 0
        async with transaction(self._sessions, background=True) as session:
            now = utcnow()
            for topic, partition, upto in todo:
                result = await session.exec(
                    update(OutboxRecord)
                    .where(col(OutboxRecord.delivered_at).is_(None))
                    .where(col(OutboxRecord.published_at).is_not(None))
                    .where(col(OutboxRecord.topic) == topic)
                    .where(col(OutboxRecord.kafka_partition) == partition)
                    .where(col(OutboxRecord.kafka_offset) < upto)
                    .values(delivered_at=now)
                )
                marked += int(getattr(result, "rowcount", 0) or 0)
            forgotten = await self._forget_erased(session, delivered_at=now)
        if forgotten and is_sqlite(self._engine):
            await truncate_wal(self._engine, background=True)
        return marked

    async def purge(self) -> int:
        """Housekeeping: delete rows delivered longer ago than the retention period, give up
        replaying rows older than the replay window, and forget processed event ids older than
        their retention (longer than the replay window, so a replayed event is still known)."""
        now = utcnow()
        async with transaction(self._sessions, background=True) as session:
            result = await session.exec(
                delete(OutboxRecord).where(col(OutboxRecord.delivered_at) < now - self._retention)
            )
            if self.tracks_delivery:
                stale = await session.exec(
                    update(OutboxRecord)
                    .where(col(OutboxRecord.delivered_at).is_(None))
                    .where(col(OutboxRecord.published_at).is_not(None))
                    .where(col(OutboxRecord.created_at) < now - self._replay_window)
                    .values(delivered_at=now)
                )
                abandoned = int(getattr(stale, "rowcount", 0) or 0)
                if abandoned:
                    ABANDONED.labels(self.name).inc(abandoned)
                    log.error(
                        "outbox rows not confirmed by every consumer group within the replay "
                        "window: no longer replayed",
                        extra={"relay": self.name, "rows": abandoned},
                    )
            await session.exec(
                delete(ProcessedEvent).where(
                    col(ProcessedEvent.processed_at) < now - self._processed_retention
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def pending_count(self) -> int:
        async with self._sessions() as session:
            result = await session.exec(
                select(func.count())
                .select_from(OutboxRecord)
                .where(col(OutboxRecord.published_at).is_(None))
            )
            return int(result.one())

    async def undelivered_count(self) -> int:
        """Rows not yet confirmed read by every consumer group (pending ones included)."""
        async with self._sessions() as session:
            result = await session.exec(
                select(func.count())
                .select_from(OutboxRecord)
                .where(col(OutboxRecord.delivered_at).is_(None))
            )
            return int(result.one())


async def _failed(exc: BaseException) -> None:
    raise exc


class _Statements:
    """The relay's hot statements, built once per relay as Core: a relay round runs a handful
    of them, and building them per round, through the ORM, cost more than running them (a
    round of four rows took ~4 ms of CPU, a third of it numbering)."""

    def __init__(self, table: Table, *, name: str, batch_size: int) -> None:
        c = table.c
        counter: Table = EventCounter.__table__  # type: ignore[attr-defined]
        unnumbered = (
            core_select(c.id)
            .where(c.sequence.is_(None))
            .where(c.published_at.is_(None))
            .order_by(c.id)
        )
        self.unnumbered_any = unnumbered.limit(1)
        self.unnumbered = unnumbered.limit(batch_size)
        self.counter = core_select(counter.c.last).where(counter.c.source == name).with_for_update()
        self.count_up = (
            update(counter).where(counter.c.source == name).values(last=bindparam("last"))
        )
        self.number = (
            update(table).where(c.id == bindparam("row_id")).values(sequence=bindparam("number"))
        )
        self.pending = (
            core_select(c.id, c.key, c.topic, c.headers, c.value, c.sequence)
            .where(c.published_at.is_(None))
            .where(c.sequence.is_not(None))
            .order_by(c.id)
            .limit(batch_size)
        )
        self.pending_locked = self.pending.with_for_update(skip_locked=True)
        self.mark = (
            update(table)
            .where(c.id == bindparam("row_id"))
            .values(
                published_at=bindparam("at", type_=c.published_at.type),
                kafka_partition=bindparam("part"),
                kafka_offset=bindparam("off"),
                delivered_at=bindparam("done", type_=c.delivered_at.type),
            )
        )
