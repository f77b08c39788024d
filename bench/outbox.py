"""Outbox relay throughput and commit-to-consume latency, on SQLite and (if configured) PostgreSQL.

    .venv/bin/python bench/outbox.py [--events 20000] [--rate 200] [--seconds 10]

PostgreSQL runs when NRM_BENCH_DATABASE_URL or NRM_TEST_DATABASE_URL is set (a scratch schema is
created and dropped). Each run uses its own embedded Tansu broker on loopback.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import postgres_url, report, scratch_schema
from contracts.cloudevents import CloudEvent
from contracts.events import ReferralWithdrawn
from services.common.broker import EmbeddedBroker
from services.common.bus import ConsumerRunner, create_producer, ensure_topics
from services.common.db import create_all, create_engine, session_factory, transaction
from services.common.models import runtime_metadata
from services.common.outbox import OutboxRelay, add_event


def event(key: str, seq: int) -> CloudEvent:
    payload = ReferralWithdrawn(referral_id=key, reference=f"seq-{seq}", withdrawn_by="bench")
    return CloudEvent.new(source="bench", payload=payload, subject=key, agency="bench")


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else 0


async def run(kind: str, url: str, schema: str | None, args: argparse.Namespace) -> dict[str, Any]:
    engine = create_engine(url, search_path=schema)
    sessions = session_factory(engine)
    await create_all(engine, runtime_metadata)
    topic = f"bench.{uuid.uuid4().hex[:8]}"
    async with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap, partitions=6, names=[topic])
        producer = create_producer(broker.bootstrap)
        await producer.start()
        relay = OutboxRelay(engine=engine, sessions=sessions, producer=producer, batch_size=1000)

        # 1. Relay throughput: a backlog of N committed events, drained from a cold start.
        for start in range(0, args.events, 1000):
            async with transaction(sessions) as session:
                for i in range(start, min(start + 1000, args.events)):
                    await add_event(session, event(f"k{i % 500}", i), topic=topic)
        t0 = time.perf_counter()
        await relay.start()
        while await relay.pending_count():
            await asyncio.sleep(0.01)
        drain = time.perf_counter() - t0

        # 2. Commit-to-consume latency at a fixed rate, one event per transaction.
        committed: dict[str, float] = {}
        latencies: list[float] = []

        async def handler(session: AsyncSession, e: CloudEvent) -> None:
            return None

        applied = 0

        async def after_apply(e: CloudEvent) -> None:
            nonlocal applied
            applied += 1
            if e.id in committed:
                latencies.append(time.perf_counter() - committed[e.id])

        runner = ConsumerRunner(
            name=f"bench-{topic}",
            topics=[topic],
            handler=handler,
            sessions=sessions,
            bootstrap=broker.bootstrap,
            producer=producer,
            after_apply=after_apply,
            session_timeout_ms=2000,  # Tansu forms the group after half of it
        )
        await runner.start()
        while applied < args.events:  # consume the backlog first
            await asyncio.sleep(0.1)
        total = int(args.rate * args.seconds)
        interval = 1 / args.rate
        t0 = time.perf_counter()
        for i in range(total):
            e = event(f"lat{i % 50}", i)
            async with transaction(sessions) as session:
                await add_event(session, e, topic=topic)
            committed[e.id] = time.perf_counter()
            delay = t0 + (i + 1) * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        deadline = time.monotonic() + 60
        while len(latencies) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await runner.stop()
        await relay.stop()
        await producer.stop()
    await engine.dispose()
    ms = [x * 1000 for x in latencies]
    return {
        "database": kind,
        "relay_events": args.events,
        "relay_events_per_s": round(args.events / drain),
        "latency_rate_per_s": args.rate,
        "latency_samples": len(ms),
        "latency_ms_p50": round(pct(ms, 50), 2),
        "latency_ms_p99": round(pct(ms, 99), 2),
        "latency_ms_max": round(max(ms), 2) if ms else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--out", default="bench/results-outbox.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", None, args))
    pg = postgres_url()
    if pg:
        async with scratch_schema(pg) as schema:
            results.append(await run("postgresql", pg, schema, args))
    report("outbox", results, args.out)


if __name__ == "__main__":
    asyncio.run(main())
