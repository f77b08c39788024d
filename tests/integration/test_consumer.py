"""The idempotent consumer: crash between DB commit and offset commit, failing handlers."""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from services.common.broker import EmbeddedBroker
from services.common.bus import CONSUMED
from services.common.models import ProcessedEvent
from tests.support import (
    Database,
    dead_letter_from,
    effect_count,
    effects,
    make_consumer,
    make_event,
    record_effect,
    wait_for,
)

ROOT = Path(__file__).parents[2]


async def _publish(producer: AIOKafkaProducer, topic: str, event: CloudEvent) -> None:
    rec = event.to_kafka()
    await producer.send_and_wait(topic, rec.value, key=rec.key, headers=rec.headers)


@pytest.mark.parametrize("batch_size", [1, 100])
async def test_consumer_killed_after_db_commit_does_not_apply_twice(
    db: Database,
    broker: EmbeddedBroker,
    topic: str,
    producer: AIOKafkaProducer,
    batch_size: int,
) -> None:
    """Killed after a DB commit, before the offset commit. One record per transaction: the
    kill follows `target`'s commit. Batched: the three share one transaction and all commit."""
    key = "ref-kill"  # one key → one partition → the three events arrive in order
    first, target, last = (make_event(key, i) for i in range(3))
    for event in (first, target, last):
        await _publish(producer, topic, event)
    group = f"group-{topic}"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.consumer_child",
        cwd=ROOT,
        env={
            **os.environ,
            "CHILD_DB_URL": db.url,
            "CHILD_DB_SCHEMA": db.schema or "",
            "CHILD_BOOTSTRAP": broker.bootstrap,
            "CHILD_TOPIC": topic,
            "CHILD_GROUP": group,
            "CHILD_KILL_AFTER": target.id,
            "CHILD_BATCH_SIZE": str(batch_size),
        },
    )
    returncode = await asyncio.wait_for(child.wait(), timeout=60)
    assert returncode == -signal.SIGKILL
    # The child committed these to the database, and no offset past them.
    committed = [first, target] if batch_size == 1 else [first, target, last]
    assert [r.event_id for r in await effects(db)] == [e.id for e in committed]

    duplicates = CONSUMED.labels(group, "duplicate")
    before = duplicates._value.get()
    runner = make_consumer(db, broker.bootstrap, topic, producer, name=group)
    await runner.start()
    try:
        await wait_for(lambda: _count_is(db, 3), timeout=60)
    finally:
        await runner.stop()
    assert [r.event_id for r in await effects(db)] == [first.id, target.id, last.id]
    # The restarted consumer really was handed the already-applied events again, and skipped them.
    assert duplicates._value.get() - before >= 1


async def test_handler_that_keeps_failing_is_dead_lettered_and_flow_continues(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    poison, good = make_event("ref-p", 666), make_event("ref-p", 1)
    await _publish(producer, topic, poison)
    await _publish(producer, topic, good)
    attempts: list[str] = []

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        attempts.append(event.id)
        if event.id == poison.id:
            raise RuntimeError("cannot apply this one")
        await record_effect(session, event)

    runner = make_consumer(
        db, broker.bootstrap, topic, producer, handler=handler, max_attempts=3, retry_backoff=0.01
    )
    await runner.start()
    try:
        await wait_for(lambda: _count_is(db, 1), timeout=30)
    finally:
        await runner.stop()
    # Once in the chunk it shared with `good` (rolled back whole), then 3 times on its own.
    assert attempts.count(poison.id) == 1 + 3
    assert (await effects(db))[0].event_id == good.id

    dead = await dead_letter_from(broker.bootstrap, topic)
    headers = dict(dead.headers)
    assert headers["ce_id"] == poison.id.encode()
    assert headers["dlq_error"] == b"RuntimeError: cannot apply this one"


async def test_poison_event_inside_a_batch_is_dead_lettered_and_the_rest_applied_once(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    """Eight records of one key, in one fetch and one batch: the poison among them goes to the
    dead-letter topic, and the others (one of them delivered twice) take effect once each, in
    order."""
    good = [make_event("ref-b", seq) for seq in range(6)]
    poison = make_event("ref-b", 666)
    for event in (good[0], good[1], good[2], poison, good[3], good[1], good[4], good[5]):
        await _publish(producer, topic, event)
    attempts: list[str] = []

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        attempts.append(event.id)
        if event.id == poison.id:
            raise RuntimeError("cannot apply this one")
        await record_effect(session, event)

    prepared: list[list[str]] = []

    async def prepare(session: AsyncSession, events: list[CloudEvent]) -> None:
        prepared.append([e.id for e in events])

    group = f"group-{topic}"
    dead = CONSUMED.labels(group, "deadlettered")
    before = dead._value.get()
    runner = make_consumer(
        db,
        broker.bootstrap,
        topic,
        producer,
        name=group,
        handler=handler,
        prepare=prepare,
        max_attempts=2,
        retry_backoff=0.01,
    )
    await runner.start()
    try:
        await wait_for(lambda: _count_is(db, 6), timeout=30)
        dead_letter = await dead_letter_from(broker.bootstrap, topic)
    finally:
        await runner.stop()

    applied = await effects(db)
    assert [(r.event_id, r.seq) for r in applied] == [(e.id, seq) for seq, e in enumerate(good)]
    # Once in the batch it shared with the others, then twice on its own.
    assert attempts.count(poison.id) == 1 + 2
    # The batch hook sees each transaction's new events once: the whole batch, the part before
    # the poison again, then what follows it (the poison, retried alone, goes without).
    g = [e.id for e in good]
    assert prepared == [[g[0], g[1], g[2], poison.id, g[3], g[4], g[5]], g[:3], g[3:]]
    assert dict(dead_letter.headers)["ce_id"] == poison.id.encode()
    assert dead._value.get() - before == 1
    async with db.sessions() as session:
        ledger = await session.exec(
            select(col(ProcessedEvent.event_id)).where(col(ProcessedEvent.consumer) == group)
        )
        assert sorted(ledger) == sorted(e.id for e in good)


async def test_a_background_group_gathers_what_arrives_within_its_fetch_wait(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    """A group with a large `fetch_min_bytes` (audit and insights: the background groups) is
    not answered with the one record waiting when it fetches: the broker holds the fetch for
    its wait, so a second event sent half a second later is applied with the first. With
    1 byte the first is applied as soon as the group has joined (this test then fails)."""
    applied_at: dict[str, float] = {}

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        await record_effect(session, event)
        applied_at[event.id] = time.monotonic()

    first, second = make_event("ref-gather", 0), make_event("ref-gather", 1)
    await _publish(producer, topic, first)
    runner = make_consumer(
        db,
        broker.bootstrap,
        topic,
        producer,
        handler=handler,
        fetch_max_wait_ms=2000,
        fetch_min_bytes=1_048_576,
    )
    await runner.start()
    try:
        await asyncio.sleep(0.5)  # the gap that the fetch's wait bridges
        await _publish(producer, topic, second)
        sent = time.monotonic()
        await wait_for(lambda: _count_is(db, 2), timeout=30)
    finally:
        await runner.stop()
    assert applied_at[first.id] >= sent


async def test_event_with_invalid_payload_is_dead_lettered_without_retries(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    bad = make_event("ref-v", 1).model_copy(update={"data": {"referral_id": "ref-v"}})
    good = make_event("ref-v", 2)
    await _publish(producer, topic, bad)
    await _publish(producer, topic, good)
    runner = make_consumer(db, broker.bootstrap, topic, producer)
    await runner.start()
    try:
        await wait_for(lambda: _count_is(db, 1), timeout=30)
    finally:
        await runner.stop()

    dead = await dead_letter_from(broker.bootstrap, topic)
    error = dict(dead.headers)["dlq_error"].decode()
    # Field paths, and never the submitted values.
    assert "reference: Field required" in error
    assert "withdrawn_by: Field required" in error
    assert "ref-v" not in error


async def _count_is(db: Database, n: int) -> bool:
    return await effect_count(db) == n


async def test_database_outage_is_retried_past_max_attempts_not_dead_lettered(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    event = make_event("ref-o", 1)
    await _publish(producer, topic, event)
    outage = 4  # more failures than max_attempts: still applied, never dead-lettered

    async def handler(session: AsyncSession, e: CloudEvent) -> None:
        nonlocal outage
        if outage:
            outage -= 1
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("db restarting"))
        await record_effect(session, e)

    group = f"group-{topic}"
    dead = CONSUMED.labels(group, "deadlettered")
    runner = make_consumer(
        db,
        broker.bootstrap,
        topic,
        producer,
        name=group,
        handler=handler,
        max_attempts=2,
        retry_backoff=0.01,
    )
    await runner.start()
    try:
        await wait_for(lambda: _count_is(db, 1), timeout=30)
    finally:
        await runner.stop()
    assert outage == 0
    assert dead._value.get() == 0
    assert (await effects(db))[0].event_id == event.id
