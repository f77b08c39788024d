"""The outbox against a real broker and real databases."""

import asyncio
import contextlib
import time
from collections import defaultdict
from typing import Any

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
    read_topic,
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


def _number(record: Any) -> int:
    return int(dict(record.headers)["ce_sequence"])


async def test_events_are_numbered_once_gap_free_and_in_commit_order(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    """`ce_sequence`: 1..n with no gap and no repeat across concurrent writers and (on
    PostgreSQL) three replicas of the relay; one writer's transactions get rising numbers."""
    relays = [
        OutboxRelay(
            engine=db.engine, sessions=db.sessions, producer=producer, name="numbers", batch_size=7
        )
        for _ in range(3 if db.kind == "postgresql" else 1)
    ]
    for relay in relays:
        await relay.start()

    async def writer(w: int) -> None:
        for n in range(25):
            async with transaction(db.sessions) as session:
                await add_event(session, make_event(f"num-{topic}-{w}", 2 * n), topic=topic)
                await add_event(session, make_event(f"num-{topic}-{w}", 2 * n + 1), topic=topic)

    try:
        await asyncio.gather(*(writer(w) for w in range(4)))
        records = await read_topic(
            broker.bootstrap, topic, until=lambda rs: len(rs) >= 200, timeout=60
        )
    finally:
        for relay in relays:
            await relay.stop()
    assert sorted(_number(r) for r in records) == list(range(1, 201))
    by_key: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for r in records:
        by_key[r.key].append((r.offset, _number(r)))
    for key, seen in by_key.items():
        numbers = [n for _, n in sorted(seen)]  # in the order the broker holds them
        assert numbers == sorted(numbers), key


async def test_replay_publishes_again_only_what_no_group_confirmed(
    db: Database, broker: EmbeddedBroker, topic: str, producer: AIOKafkaProducer
) -> None:
    group = f"group-{topic}"

    def tracked() -> OutboxRelay:
        return OutboxRelay(
            engine=db.engine,
            sessions=db.sessions,
            producer=producer,
            groups={topic: (group,)},
            bootstrap=broker.bootstrap,
        )

    relay = tracked()
    runner = _runner(db, broker.bootstrap, topic, producer)
    await runner.start()
    try:
        async with transaction(db.sessions) as session:
            for seq in range(3):
                await add_event(session, make_event("rp-read", seq), topic=topic)
        assert await relay.publish_batch() == 3
        assert await relay.undelivered_count() == 3  # published, not yet known to be read
        await wait_for(lambda: _count_is(db, 3), timeout=20)

        async def confirmed() -> bool:
            await relay.confirm_delivery()
            return await relay.undelivered_count() == 0

        await wait_for(confirmed, timeout=20, interval=0.2)
    finally:
        await runner.stop()
    # Two more, published while no member of the group runs: the broker has them, nobody
    # confirmed reading them.
    async with transaction(db.sessions) as session:
        for seq in (3, 4):
            await add_event(session, make_event("rp-unread", seq), topic=topic)
    assert await relay.publish_batch() == 2
    assert await relay.confirm_delivery() == 0
    again = tracked()
    try:
        assert await again.replay(timeout=30) == 2
        records = await read_topic(
            broker.bootstrap, topic, until=lambda rs: len(rs) >= 7, timeout=30
        )
    finally:
        await again.stop(flush=False)
    keys = [r.key for r in records]
    assert keys.count(b"rp-read") == 3 and keys.count(b"rp-unread") == 4
    # The replayed copies carry the numbers the events were first published with.
    assert sorted(_number(r) for r in records if r.key == b"rp-unread") == [4, 4, 5, 5]
    await relay.stop(flush=False)
