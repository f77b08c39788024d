"""The transactional outbox: events written with the state change, published by a relay.

Writers call `add_event(session, event)` inside their transaction. After the commit the relay
is woken at once (in-process signal; PostgreSQL `NOTIFY` for other processes; a slow poll as the
fallback). The relay publishes pending rows in id order and marks them published only after the
broker acknowledged them. Per key, record n+1 is not sent before record n was acknowledged, so a
failed send can never let a later record of the same referral overtake an earlier one.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from sqlalchemy import delete, func, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.topics import topic_for_type
from services.common.db import CommitSignal, SessionFactory, insert_many, is_sqlite, transaction
from services.common.models import OutboxRecord, utcnow

log = logging.getLogger(__name__)

PUBLISHED = Counter("nrm_outbox_published_total", "Outbox rows acknowledged by the broker", ["db"])
SEND_FAILURES = Counter("nrm_outbox_send_failures_total", "Failed outbox publish rounds", ["db"])

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


def _row(event: CloudEvent, topic: str | None) -> dict[str, Any]:
    record = event.to_kafka()
    return {
        "event_id": event.id,
        "event_type": event.type,
        "topic": topic or topic_for_type(event.type).name,
        "key": record.key.decode() if record.key is not None else None,
        "headers": {k: v.decode() for k, v in record.headers},
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
    """Publishes one database's outbox. Safe to run in several replicas on PostgreSQL."""

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
    ) -> None:
        self.name = name
        self._engine = engine
        self._sessions = sessions
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention = retention
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._listen_conn: Any = None

    async def start(self) -> None:
        COMMITTED.subscribe(self._engine, self._wake)
        if not is_sqlite(self._engine):
            await self._listen()
        self._task = asyncio.create_task(self._run(), name=f"relay:{self.name}")

    async def stop(self, *, flush: bool = True, timeout: float = 10.0) -> None:
        """Stop; with `flush`, first publish what is pending (bounded by `timeout`)."""
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
            except Exception:
                log.warning("outbox not fully flushed on stop", extra={"relay": self.name})
        COMMITTED.unsubscribe(self._engine, self._wake)
        if self._listen_conn is not None:
            await self._listen_conn.close()
            self._listen_conn = None

    async def _listen(self) -> None:
        conn = await self._engine.connect()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
        self._listen_conn = conn

    async def _run(self) -> None:
        backoff = 0.1
        last_purge = 0.0
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
            if loop.time() - last_purge > 60:
                last_purge = loop.time()
                await self.purge()
            if sent < self._batch_size:
                await self._sleep(self._poll_interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def publish_batch(self) -> int:
        """Publish up to one batch; returns how many rows the broker acknowledged."""
        if is_sqlite(self._engine):
            # One relay per SQLite file: read, send, mark, without holding the write lock
            # while the broker is slow.
            async with self._sessions() as session:
                rows = await self._pending(session, lock=False)
            if not rows:
                return 0
            acked = await self._send(rows)
            async with transaction(self._sessions) as session:
                await self._mark(session, acked)
            return len(acked)
        async with transaction(self._sessions) as session:
            rows = await self._pending(session, lock=True)
            rows = await self._unblocked(session, rows)
            if not rows:
                return 0
            acked = await self._send(rows)
            await self._mark(session, acked)
        return len(acked)

    async def _pending(self, session: AsyncSession, *, lock: bool) -> list[OutboxRecord]:
        query = (
            select(OutboxRecord)
            .where(col(OutboxRecord.published_at).is_(None))
            .order_by(col(OutboxRecord.id))
            .limit(self._batch_size)
        )
        if lock:
            query = query.with_for_update(skip_locked=True)
        return list(await session.exec(query))

    async def _unblocked(
        self, session: AsyncSession, rows: list[OutboxRecord]
    ) -> list[OutboxRecord]:
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

    async def _send(self, rows: Sequence[OutboxRecord]) -> list[int]:
        """Send in waves (the n-th row of every key in wave n); stop a key at its first failure.

        Returns the ids acknowledged. Raises only if nothing at all was acknowledged.
        """
        by_key: dict[Any, list[OutboxRecord]] = defaultdict(list)
        for row in rows:
            by_key[row.key if row.key is not None else ("no-key", row.id)].append(row)
        queues = list(by_key.values())
        acked: list[int] = []
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
                try:
                    futures.append(
                        await self._producer.send(
                            row.topic,
                            value=row.value,
                            key=row.key.encode() if row.key is not None else None,
                            headers=[(k, v.encode()) for k, v in row.headers.items()],
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
                    acked.append(row.id or 0)
            wave += 1
        if not acked and error is not None:
            raise error
        if error is not None:
            log.warning("outbox partly published", extra={"relay": self.name, "acked": len(acked)})
        return acked

    async def _mark(self, session: AsyncSession, ids: list[int]) -> None:
        if not ids:
            return
        await session.exec(
            update(OutboxRecord).where(col(OutboxRecord.id).in_(ids)).values(published_at=utcnow())
        )
        PUBLISHED.labels(self.name).inc(len(ids))

    async def purge(self) -> int:
        """Delete rows published longer ago than the retention period."""
        cutoff = utcnow() - self._retention
        async with transaction(self._sessions) as session:
            result = await session.exec(
                delete(OutboxRecord).where(col(OutboxRecord.published_at) < cutoff)
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


async def _failed(exc: BaseException) -> None:
    raise exc
