"""Notify: notifications/s, and routed-event-to-inbox latency.

    .venv/bin/python bench/notify.py [--backlog 3000] [--rate 100] [--seconds 10]

1. Throughput: a backlog of `referral.routed` events (two recipients each, one of which has a
   webhook to a receiver in another process) is put on the routing topic; notify starts and
   the clock runs until every delivery is in an inbox, and until every webhook is delivered.
2. Latency: at a fixed rate, a routed event is published and timed until the recipient's
   connected `GET /v1/inbox/stream` client receives it (p50/p99).
SQLite and, when NRM_BENCH_DATABASE_URL or NRM_TEST_DATABASE_URL is set, PostgreSQL.
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import postgres_url, report, scratch_schema, traceparent  # noqa: E402
from contracts.cloudevents import CloudEvent  # noqa: E402
from contracts.events import RecipientDecision, ReferralRouted, RoutingReason  # noqa: E402
from contracts.referrals import RoutingFacts  # noqa: E402
from contracts.vocabulary import Disclosure, ReferralKind, Urgency  # noqa: E402
from services.common.broker import EmbeddedBroker, free_port  # noqa: E402
from services.common.bus import create_producer, ensure_topics  # noqa: E402
from services.common.crypto import Vault  # noqa: E402
from services.common.db import create_all, create_engine, transaction  # noqa: E402
from services.common.models import runtime_metadata  # noqa: E402
from services.notify import channels  # noqa: E402
from services.notify.app import create_app  # noqa: E402
from services.notify.models import Delivery, Dispatch, notify_metadata  # noqa: E402
from services.notify.settings import NotifySettings  # noqa: E402
from tests.support import serve  # noqa: E402
from tests.tokens import AUDIENCE, ISSUER, TokenMint  # noqa: E402


def routed(recipients: list[str]) -> ReferralRouted:
    referral_id = str(uuid.uuid4())
    return ReferralRouted(
        referral_id=referral_id,
        reference=f"NRM-2026-{uuid.uuid4().int % 1_000_000:06d}",
        decision_id=str(uuid.uuid4()),
        reason=RoutingReason.SUBMITTED,
        policy_version="sha256:bench",
        facts=RoutingFacts(
            kind=ReferralKind.VICTIM_REFERRAL,
            submitted_by="labour-insp",
            region="KZ-39",
            urgency=Urgency.HIGH,
            exploitation=["labour"],
        ),
        recipients=[
            RecipientDecision(
                agency=a,
                disclosure=Disclosure.SUPPORT,
                rule="bench",
                deadline=datetime.now(UTC) + timedelta(hours=4),
            )
            for a in recipients
        ],
    )


def receive(port: int) -> None:
    """A webhook receiver in its own process: answers 204 to everything."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def publish(producer: Any, payload: ReferralRouted) -> None:
    event = CloudEvent.new(
        source="bench", traceparent=traceparent(), payload=payload, subject=payload.referral_id
    )
    rec = event.to_kafka()
    await producer.send_and_wait("nrm.routing.v1", rec.value, key=rec.key, headers=rec.headers)


async def count(sessions: Any, query: Any) -> int:
    async with sessions() as session:
        return int((await session.exec(query)).one())


async def run(
    kind: str,
    url: str,
    schema: str | None,
    args: argparse.Namespace,
    tmp: str,
    *,
    batch_size: int = 100,
) -> dict[str, Any]:
    """Throughput, then latency at a fixed rate."""
    mint = TokenMint()
    hook_port = free_port()
    hooks = multiprocessing.Process(target=receive, args=(hook_port,), daemon=True)
    hooks.start()
    async with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap, partitions=6)
        producer = create_producer(broker.bootstrap)
        await producer.start()
        sends = []
        for _ in range(args.backlog):
            payload = routed(["ngo-north", "mvd-ctu"])
            rec = CloudEvent.new(
                source="bench",
                traceparent=traceparent(),
                payload=payload,
                subject=payload.referral_id,
            ).to_kafka()
            sends.append(
                await producer.send("nrm.routing.v1", rec.value, key=rec.key, headers=rec.headers)
            )
        await asyncio.gather(*sends)

        settings = NotifySettings(
            data_dir=Path(tmp),
            auth_issuer=ISSUER,
            auth_audience=AUDIENCE,
            master_keys={"k1": Vault.generate_key()},
            webhook_allowed_schemes=["http"],
            webhook_allow_private=True,
            kafka_session_timeout_ms=2000,
            consumer_batch_size=batch_size,
        )
        engine = create_engine(url, search_path=schema)
        # The webhook is set before notify starts consuming, straight in its database.
        app = create_app(settings, bootstrap=broker.bootstrap, engine=engine, jwks=mint.jwks)
        runtime = app.state.runtime

        await create_all(engine, notify_metadata, runtime_metadata)
        async with transaction(runtime.sessions) as session:
            await channels.set_webhook(
                session,
                agency="ngo-north",
                url=f"http://127.0.0.1:{hook_port}/hook",
                secret=None,
                enabled=True,
                actor="bench",
                vault=app.state.vault,
                settings=settings,
            )
        total = args.backlog * 2
        deliveries = select(func.count()).select_from(Delivery)
        sent = select(func.count()).select_from(Dispatch).where(Dispatch.status == "delivered")
        async with serve(app) as base:
            t0 = time.perf_counter()
            first = inbox_at = hooks_at = None
            while hooks_at is None:
                n = await count(runtime.sessions, deliveries)
                now = time.perf_counter() - t0
                if first is None and n:
                    first = now
                if inbox_at is None and n >= total:
                    inbox_at = now
                if inbox_at is not None and await count(runtime.sessions, sent) >= args.backlog:
                    hooks_at = now
                await asyncio.sleep(0.05)
            assert first is not None and inbox_at is not None
            throughput = {
                "database": kind,
                "events_per_transaction": f"up to {batch_size}" if batch_size > 1 else "1",
                "deliveries": total,
                "inbox_notifications_per_s": round(total / (inbox_at - first)),
                "webhooks_delivered_per_s": round(args.backlog / (hooks_at - first)),
            }

            published: dict[str, float] = {}
            latencies: list[float] = []
            if args.latency:
                # Latency at a fixed rate, to a connected live-stream client.
                ready = asyncio.Event()

                async def listen() -> None:
                    headers = mint.headers("gp", "caseworker")
                    async with (
                        httpx.AsyncClient(base_url=base, timeout=None) as client,
                        client.stream("GET", "/v1/inbox/stream", headers=headers) as r,
                    ):
                        async for line in r.aiter_lines():
                            ready.set()
                            if line.startswith("data: "):
                                rid = json.loads(line[6:])["referral_id"]
                                if rid in published:
                                    latencies.append(time.perf_counter() - published[rid])

                listener = asyncio.create_task(listen())
                await asyncio.wait_for(ready.wait(), 10)
                interval = 1 / args.rate
                start = time.perf_counter()
                for i in range(args.rate * args.seconds):
                    payload = routed(["gp"])
                    published[payload.referral_id] = time.perf_counter()
                    await publish(producer, payload)
                    delay = start + (i + 1) * interval - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                deadline = time.perf_counter() + 10
                while len(latencies) < len(published) and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                listener.cancel()
        await producer.stop()
        await engine.dispose()
    hooks.terminate()
    if not args.latency:
        return throughput
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return throughput | {
        "stream_rate_per_s": args.rate,
        "stream_received": f"{len(ms)}/{len(published)}",
        "routed_to_stream_p50_ms": round(q[49], 1),
        "routed_to_stream_p99_ms": round(q[98], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--latency",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time routed events to the live stream at --rate (after the backlog)",
    )
    parser.add_argument("--out", default="bench/results-notify.json")
    args = parser.parse_args()
    results = []
    # Batched as the service runs, then a transaction per event (the naive way), in one run.
    for batch_size in (100, 1):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/notify.db"
            results.append(await run("sqlite", url, None, args, tmp, batch_size=batch_size))
        pg = postgres_url()
        if pg:
            async with scratch_schema(pg) as schema:
                with tempfile.TemporaryDirectory() as tmp:
                    results.append(
                        await run("postgresql", pg, schema, args, tmp, batch_size=batch_size)
                    )
    report("notify", results, args.out)


if __name__ == "__main__":
    asyncio.run(main())
