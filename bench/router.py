"""Routing decisions/s: `referral.submitted` events in → decisions committed and published.

    .venv/bin/python bench/router.py [--referrals 5000]

A backlog of submitted events (the DESIGN.md victim referral, varied across regions, exploitation
and age so several rules fire) is put on the referrals topic first; then one router instance
starts and the clock runs until every decision is committed, and until every `referral.routed`
is acknowledged by the broker (outbox relayed). SQLite and, when NRM_BENCH_DATABASE_URL or
NRM_TEST_DATABASE_URL is set, PostgreSQL. The router runs in this process; its own embedded broker.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import postgres_url, report, scratch_schema, traceparent  # noqa: E402
from contracts.cloudevents import CloudEvent  # noqa: E402
from contracts.events import ReferralSubmitted  # noqa: E402
from contracts.referrals import ReferralIn, RoutingFacts  # noqa: E402
from services.common.broker import EmbeddedBroker  # noqa: E402
from services.common.bus import create_producer, ensure_topics  # noqa: E402
from services.common.db import create_engine  # noqa: E402
from services.common.runtime import ServiceRuntime  # noqa: E402
from services.router.app import create_app  # noqa: E402
from services.router.models import RoutedReferral  # noqa: E402
from services.router.settings import RouterSettings  # noqa: E402
from tests.unit.test_contracts import REFERRAL_EXAMPLE  # noqa: E402

REGIONS = ["KZ-79", "KZ-39", "KZ-15", "KZ-75", "KZ-11"]
EXPLOITATION = [["sexual"], ["labour"], ["labour", "sexual"], ["forced_begging"]]


def submitted(i: int) -> ReferralSubmitted:
    body = json.loads(REFERRAL_EXAMPLE)
    body["region"] = REGIONS[i % len(REGIONS)]
    body["exploitation"] = EXPLOITATION[i % len(EXPLOITATION)]
    body["victim"]["age"] = 16 if i % 7 == 0 else 24
    del body["victim"]["identity"]["date_of_birth"]  # the age would disagree with it
    body["official_involvement"] = i % 5 == 0
    parsed = TypeAdapter(ReferralIn).validate_python(body)
    return ReferralSubmitted(
        referral_id=str(uuid.uuid4()),
        reference=f"NRM-2026-{i:06d}",
        submitted_at=datetime.now(UTC),
        facts=RoutingFacts.from_referral(parsed, submitted_by="labour-insp"),
    )


async def run(
    kind: str, url: str, schema: str | None, args: argparse.Namespace, *, batch_size: int = 100
) -> dict[str, Any]:
    async with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap, partitions=6)
        producer = create_producer(broker.bootstrap)
        await producer.start()
        sends = []
        for i in range(args.referrals):
            payload = submitted(i)
            event = CloudEvent.new(  # the referral as subject, as intake stamps it
                source="bench",
                traceparent=traceparent(),
                payload=payload,
                subject=payload.referral_id,
            )
            rec = event.to_kafka()
            key = event.data["referral_id"].encode()
            sends.append(
                await producer.send("nrm.referrals.v1", rec.value, key=key, headers=rec.headers)
            )
        await asyncio.gather(*sends)
        await producer.stop()

        with tempfile.TemporaryDirectory() as tmp:
            settings = RouterSettings(
                data_dir=Path(tmp), kafka_session_timeout_ms=2000, consumer_batch_size=batch_size
            )
            engine = create_engine(url, search_path=schema)
            app = create_app(settings, bootstrap=broker.bootstrap, engine=engine)
            runtime: ServiceRuntime = app.state.runtime
            t0 = time.perf_counter()
            async with app.router.lifespan_context(app):
                started = time.perf_counter() - t0
                decided_at = first_at = None
                while True:
                    async with runtime.sessions() as session:
                        n = (
                            await session.exec(select(func.count()).select_from(RoutedReferral))
                        ).one()
                    if first_at is None and n:
                        first_at = time.perf_counter() - t0
                    if decided_at is None and n >= args.referrals:
                        decided_at = time.perf_counter() - t0
                    assert runtime.relay is not None
                    if decided_at is not None and not await runtime.relay.pending_count():
                        published_at = time.perf_counter() - t0
                        break
                    await asyncio.sleep(0.02)
            await engine.dispose()
    assert first_at is not None and decided_at is not None
    return {
        "database": kind,
        "referrals": args.referrals,
        "events_per_transaction": f"up to {batch_size}" if batch_size > 1 else "1",
        "startup_s": round(started, 2),
        "first_decision_s": round(first_at, 2),
        # From the first decision on: group formation is a one-off, not throughput.
        "decisions_per_s": round(args.referrals / (decided_at - first_at)),
        "decided_and_published_per_s": round(args.referrals / (published_at - first_at)),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=5000)
    parser.add_argument("--out", default="bench/results-router.json")
    args = parser.parse_args()
    results = []
    # Batched as the service runs, then a transaction per event (the naive way), in one run.
    for batch_size in (100, 1):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/router.db"
            results.append(await run("sqlite", url, None, args, batch_size=batch_size))
        pg = postgres_url()
        if pg:
            async with scratch_schema(pg) as schema:
                results.append(await run("postgresql", pg, schema, args, batch_size=batch_size))
    report("router", results, args.out)


if __name__ == "__main__":
    asyncio.run(main())
