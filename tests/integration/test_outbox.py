"""The outbox against a real broker and real databases."""

import asyncio
import contextlib
import time
from collections import defaultdict

from aiokafka import AIOKafkaProducer

from services.common.broker import EmbeddedBroker
from services.common.bus import ConsumerRunner, create_producer
from services.common.db import transaction
from services.common.outbox import OutboxRelay, add_event
from tests.support import (
    Database,
    Effect,
    dead_letter_from,
    effect_count,
    effects,
    make_consumer,
    make_event,
    wait_for,
)


def _runner(db: Database, bootstrap: str, topic: str, producer: AIOKafkaProducer) -> ConsumerRunner:
    return make_consumer(db, bootstrap, topic, producer)


async def test_event_through_outbox_reaches_consumer_once_even_if_delivered_twice(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    event = make_event("ref-1", 1)
    async with transaction(db.sessions) as session:
        await add_event(session, event, topic=topic)
    relay = OutboxRelay(engine=db.engine, sessions=db.sessions, producer=producer)
    runner = _runner(db, broker.bootstrap, topic, producer)
    await relay.start()
    await runner.start()
    try:
        await wait_for(lambda: _count_is(db, 1), timeout=20)
        assert await relay.pending_count() == 0
        # The broker redelivers the very same event (same ce_id): no second effect.
        record = event.to_kafka()
        await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
        await producer.send_and_wait(
            topic,
            make_event("ref-1", 2).to_kafka().value,
            key=b"ref-1",
            headers=make_event("ref-1", 2).to_kafka().headers,
        )
        await wait_for(lambda: _count_is(db, 2), timeout=20)
    finally:
        await runner.stop()
        await relay.stop()
    rows = await effects(db)
    assert [r.event_id for r in rows].count(event.id) == 1
    assert [r.seq for r in rows] == [1, 2]


async def test_rolled_back_transaction_publishes_nothing(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    with contextlib.suppress(RuntimeError):
        async with transaction(db.sessions) as session:
            await add_event(session, make_event("ref-x", 1), topic=topic)
            raise RuntimeError("state change failed")
    relay = OutboxRelay(engine=db.engine, sessions=db.sessions, producer=producer)
    assert await relay.pending_count() == 0
    assert await relay.publish_batch() == 0


async def test_relay_wakes_on_commit_without_waiting_for_the_poll(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    # A poll interval far longer than the wait below: only the commit signal can explain delivery.
    relay = OutboxRelay(
        engine=db.engine, sessions=db.sessions, producer=producer, poll_interval=3600
    )
    await relay.start()
    try:
        # The first event may be caught by the relay's opening round; once it is published the
        # relay is idle in its 3600 s wait, so the second can only go out on the commit signal.
        for seq in (1, 2):
            async with transaction(db.sessions) as session:
                await add_event(session, make_event("ref-w", seq), topic=topic)
            await wait_for(lambda: _pending_is(relay, 0), timeout=10)
    finally:
        await relay.stop()


async def test_concurrent_writers_arrive_complete_and_in_order_per_key(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    writers, keys_per_writer, per_key = 5, 10, 100  # 5,000 events
    # Several relays on PostgreSQL (SKIP LOCKED); SQLite has one writer process, one relay.
    relays = [
        OutboxRelay(
            engine=db.engine, sessions=db.sessions, producer=producer, name=f"r{i}", batch_size=200
        )
        for i in range(3 if db.kind == "postgresql" else 1)
    ]
    runner = _runner(db, broker.bootstrap, topic, producer)
    for relay in relays:
        await relay.start()
    await runner.start()

    async def writer(w: int) -> None:
        keys = [f"w{w}-k{k}" for k in range(keys_per_writer)]
        for seq in range(per_key):
            async with transaction(db.sessions) as session:
                for key in keys:
                    await add_event(session, make_event(key, seq), topic=topic)

    try:
        await asyncio.gather(*(writer(w) for w in range(writers)))
        total = writers * keys_per_writer * per_key
        await wait_for(lambda: _count_is(db, total), timeout=120)
    finally:
        await runner.stop()
        for relay in relays:
            await relay.stop()
    seen: dict[str, list[int]] = defaultdict(list)
    for row in await effects(db):  # in the order the consumer applied them
        seen[row.key].append(row.seq)
    assert len(seen) == writers * keys_per_writer
    for key, seqs in seen.items():
        assert seqs == list(range(per_key)), f"{key} out of order or incomplete"


async def test_broker_frozen_while_writes_continue_loses_nothing(
    db: Database, own_broker: EmbeddedBroker, topic: str
) -> None:
    bootstrap = own_broker.bootstrap
    from services.common.bus import ensure_topics

    await ensure_topics(bootstrap, partitions=3, names=[topic])
    producer = create_producer(bootstrap, request_timeout_ms=5000)
    await producer.start()
    relay = OutboxRelay(engine=db.engine, sessions=db.sessions, producer=producer)
    runner = _runner(db, bootstrap, topic, producer)
    await relay.start()
    await runner.start()
    written = 0

    async def write_for(seconds: float) -> None:
        nonlocal written
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            async with transaction(db.sessions) as session:
                await add_event(session, make_event(f"k{written % 7}", written), topic=topic)
            written += 1
            await asyncio.sleep(0.01)  # pacing: ~100 writes/s, not waiting for anything

    try:
        await write_for(1)
        await wait_for(lambda: _count_at_least(db, 1), timeout=20)
        own_broker.freeze()
        try:
            await write_for(10)  # writes keep committing while the broker answers nothing
        finally:
            own_broker.thaw()
        await write_for(1)
        await wait_for(lambda: _count_is(db, written), timeout=90)
        assert await relay.pending_count() == 0
    finally:
        await runner.stop()
        await relay.stop()
        await producer.stop()
    rows = await effects(db)
    assert sorted(r.seq for r in rows) == list(range(written))
    by_key: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        by_key[r.key].append(r.seq)
    for seqs in by_key.values():
        assert seqs == sorted(seqs)


async def test_dead_letter_keeps_original_value(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    """Undecodable record → dead-letter topic with the error; the next record is processed."""
    await producer.send_and_wait(topic, b"\xff not json", key=b"ref-bad")
    good = make_event("ref-bad", 1)
    rec = good.to_kafka()
    await producer.send_and_wait(topic, rec.value, key=rec.key, headers=rec.headers)
    runner = _runner(db, broker.bootstrap, topic, producer)
    await runner.start()
    try:
        await wait_for(lambda: _count_is(db, 1), timeout=20)
    finally:
        await runner.stop()
    assert (await effects(db))[0].event_id == good.id

    dead = await dead_letter_from(broker.bootstrap, topic)
    headers = dict(dead.headers)
    assert dead.value == b"\xff not json"
    assert dead.key == b"ref-bad"
    assert b"missing CloudEvents headers" in headers["dlq_error"]
    assert headers["dlq_consumer"] == f"group-{topic}".encode()


async def _count_is(db: Database, n: int) -> bool:
    return await effect_count(db) == n


async def _count_at_least(db: Database, n: int) -> bool:
    return await effect_count(db) >= n


async def _pending_is(relay: OutboxRelay, n: int) -> bool:
    return await relay.pending_count() == n


__all__ = ["Effect"]
