"""Insights projection throughput (events/s) and the time to answer a question.

    .venv/bin/python bench/insights.py [--referrals 3000]

A backlog of three events per referral (`referral.submitted`, `referral.routed`,
`referral.acknowledged`, across regions, exploitation types and months of 2025) is put on the
topics first; then one insights instance starts and the clock runs, from its first applied
event, until every referral and acknowledgement is in the projection. Then
`by=region,exploitation` over the year is asked (disclosure control included) and timed.
SQLite and, when NRM_BENCH_DATABASE_URL or NRM_TEST_DATABASE_URL is set, PostgreSQL; the
service in this process, its own embedded broker.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import postgres_url, report, scratch_schema, traceparent  # noqa: E402
from contracts.cloudevents import CloudEvent  # noqa: E402
from contracts.events import (  # noqa: E402
    Payload,
    RecipientDecision,
    ReferralAcknowledged,
    ReferralRouted,
    ReferralSubmitted,
    RoutingReason,
)
from contracts.referrals import ConsentScopes, RoutingFacts, VictimStatistics  # noqa: E402
from contracts.vocabulary import AgeBand, Sex  # noqa: E402
from services.common.broker import EmbeddedBroker  # noqa: E402
from services.common.bus import create_producer, ensure_topics  # noqa: E402
from services.common.db import create_engine  # noqa: E402
from services.common.runtime import ServiceRuntime  # noqa: E402
from services.insights import service  # noqa: E402
from services.insights.app import create_app  # noqa: E402
from services.insights.models import DeliveryFact, ReferralFact  # noqa: E402
from services.insights.settings import InsightsSettings  # noqa: E402

REGIONS = ["KZ-79", "KZ-39", "KZ-15", "KZ-75", "KZ-11", "KZ-55", "KZ-71", "KZ-19"]
EXPLOITATION = [["sexual"], ["labour"], ["labour", "sexual"], ["forced_begging"], ["servitude"]]
CONSENT = ConsentScopes(services=True, law_enforcement=True, statistics=True)


def events(i: int) -> list[tuple[str, Payload]]:
    rid = str(uuid.uuid4())
    submitted_at = datetime(2025, 1 + i % 12, 1 + i % 28, tzinfo=UTC)
    facts = RoutingFacts(
        kind="victim_referral",
        submitted_by="labour-insp",
        region=REGIONS[i % len(REGIONS)],
        urgency="routine",
        exploitation=EXPLOITATION[i % len(EXPLOITATION)],
        consent=CONSENT,
    )
    submitted = ReferralSubmitted(
        referral_id=rid,
        reference=f"NRM-2025-{i:06d}",
        submitted_at=submitted_at,
        facts=facts,
        statistics=VictimStatistics(age_band=AgeBand.AGE_24_26, sex=Sex.FEMALE, citizenship="KZ"),
    )
    routed_at = submitted_at + timedelta(minutes=1)
    routed = ReferralRouted(
        referral_id=rid,
        reference=submitted.reference,
        decision_id=str(uuid.uuid4()),
        reason=RoutingReason.SUBMITTED,
        policy_version="sha256:bench",
        facts=facts,
        recipients=[
            RecipientDecision(
                agency="ngo-south",
                disclosure="support",
                rule="bench",
                deadline=routed_at + timedelta(hours=24),
            )
        ],
    )
    ack = ReferralAcknowledged(
        delivery_id=f"d-{rid}",
        referral_id=rid,
        agency="ngo-south",
        actor="ngo-south",
        at=routed_at + timedelta(hours=1 + i % 30),
    )
    return [
        ("nrm.referrals.v1", submitted),
        ("nrm.routing.v1", routed),
        ("nrm.case-events.v1", ack),
    ]


async def _counts(runtime: ServiceRuntime) -> tuple[int, int]:
    async with runtime.sessions() as session:
        referrals = (await session.exec(select(func.count()).select_from(ReferralFact))).one()
        acks = (
            await session.exec(
                select(func.count()).where(col(DeliveryFact.acknowledged_at).is_not(None))
            )
        ).one()
    return referrals, acks


async def run(kind: str, url: str, schema: str | None, args: argparse.Namespace) -> dict[str, Any]:
    n = args.referrals
    async with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap, partitions=6)
        producer = create_producer(broker.bootstrap)
        await producer.start()
        sends = []
        for i in range(n):
            for topic, payload in events(i):
                # The referral as subject, as the services stamp it: insights' batch prefetch
                # finds a batch's rows by it.
                event = CloudEvent.new(
                    source="bench",
                    traceparent=traceparent(),
                    payload=payload,
                    subject=payload.referral_id,  # type: ignore[attr-defined]
                )
                rec = event.to_kafka()
                key = event.data["referral_id"].encode()
                sends.append(await producer.send(topic, rec.value, key=key, headers=rec.headers))
        await asyncio.gather(*sends)
        await producer.stop()

        with tempfile.TemporaryDirectory() as tmp:
            settings = InsightsSettings(data_dir=Path(tmp), kafka_session_timeout_ms=2000)
            engine = create_engine(url, search_path=schema)
            app = create_app(settings, bootstrap=broker.bootstrap, engine=engine)
            runtime: ServiceRuntime = app.state.runtime
            t0 = time.perf_counter()
            async with app.router.lifespan_context(app):
                first_at = None
                while True:
                    referrals, acks = await _counts(runtime)
                    if first_at is None and (referrals or acks):
                        first_at = time.perf_counter() - t0
                    if referrals >= n and acks >= n:
                        done_at = time.perf_counter() - t0
                        break
                    await asyncio.sleep(0.02)
                question = service.Question(
                    start="2025-01",
                    end="2025-12",
                    by=("region", "exploitation"),
                    measure="referrals",
                )
                timings = []
                for _ in range(5):
                    started = time.perf_counter()
                    async with runtime.sessions() as session:
                        await service.answer(
                            session,
                            question=question,
                            k=settings.k,
                            period_months=settings.period_months,
                            agency_types=settings.agency_types,
                        )
                    timings.append((time.perf_counter() - started) * 1000)
            await engine.dispose()
    assert first_at is not None
    return {
        "database": kind,
        "referrals": n,
        "events": 3 * n,
        # From the first applied event on: group formation is a one-off, not throughput.
        "events_per_s": round(3 * n / (done_at - first_at)),
        "question_ms": round(statistics.median(timings), 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=3000)
    parser.add_argument("--out", default="bench/results-insights.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(await run("sqlite", f"sqlite+aiosqlite:///{tmp}/insights.db", None, args))
    pg = postgres_url()
    if pg:
        async with scratch_schema(pg) as schema:
            results.append(await run("postgresql", pg, schema, args))
    report("insights", results, args.out)


if __name__ == "__main__":
    asyncio.run(main())
