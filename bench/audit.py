"""Audit: ingest events/s (topics → chain) and verification records/s.

    .venv/bin/python bench/audit.py [--events 5000] [--records 200000]

1. Ingest: a backlog of events spread over the referral, case-event and access topics; the audit
   consumer starts and the clock runs until every event is in the chain.
2. Verification: a chain of `--records` records is written in bulk with the hashing `append`
   uses, then `service.verify` recomputes it end to end and `chain.verify_export` checks an
   export of it offline, each `--rounds` times (median kept). Target: >= 200,000 records/s.
SQLite and, when NRM_BENCH_DATABASE_URL or NRM_TEST_DATABASE_URL is set, PostgreSQL.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import postgres_url, report, scratch_schema, traceparent  # noqa: E402
from contracts.cloudevents import CloudEvent  # noqa: E402
from contracts.events import AccessGranted, ReferralAcknowledged, ReferralWithdrawn  # noqa: E402
from contracts.topics import topic_for_type  # noqa: E402
from services.audit import chain, service  # noqa: E402
from services.audit.app import create_app  # noqa: E402
from services.audit.models import ChainHead, Record, audit_metadata  # noqa: E402
from services.audit.settings import AuditSettings  # noqa: E402
from services.common.broker import EmbeddedBroker  # noqa: E402
from services.common.bus import create_producer, ensure_topics  # noqa: E402
from services.common.crypto import Vault, vault_from_settings  # noqa: E402
from services.common.db import (  # noqa: E402
    create_all,
    create_engine,
    insert_many,
    session_factory,
    transaction,
)
from services.common.models import runtime_metadata  # noqa: E402


def sample(i: int) -> CloudEvent:
    rid = str(uuid.uuid4())
    now = datetime.now(UTC)
    payload: Any
    if i % 3 == 0:
        payload = ReferralWithdrawn(
            referral_id=rid, reference=f"NRM-2026-{i:06d}", withdrawn_by="gp"
        )
    elif i % 3 == 1:
        payload = ReferralAcknowledged(
            delivery_id=rid, referral_id=rid, agency="gp", actor="gp", at=now
        )
    else:
        payload = AccessGranted(
            action="referral.read",
            resource_type="referral",
            resource_id=rid,
            agency="gp",
            client_id="gp",
            disclosure="full",
        )
    return CloudEvent.new(
        source="bench", traceparent=traceparent(), payload=payload, subject=rid, agency="gp"
    )


async def ingest(
    url: str, schema: str | None, args: argparse.Namespace, tmp: str, *, batch_size: int = 100
) -> float:
    async with EmbeddedBroker() as broker:
        await ensure_topics(broker.bootstrap, partitions=6)
        producer = create_producer(broker.bootstrap)
        await producer.start()
        sends = []
        for i in range(args.events):
            e = sample(i)
            rec = e.to_kafka()
            topic = topic_for_type(e.type).name
            sends.append(await producer.send(topic, rec.value, key=rec.key, headers=rec.headers))
        await asyncio.gather(*sends)
        await producer.stop()
        settings = AuditSettings(
            data_dir=Path(tmp),
            master_keys={"k1": Vault.generate_key()},
            kafka_session_timeout_ms=2000,
            checkpoint_interval_seconds=3600,
            consumer_batch_size=batch_size,
        )
        engine = create_engine(url, search_path=schema)
        app = create_app(settings, bootstrap=broker.bootstrap, engine=engine)
        runtime = app.state.runtime
        async with app.router.lifespan_context(app):
            t0 = first = None
            while True:
                async with runtime.sessions() as session:
                    n = (await session.exec(select(func.count()).select_from(Record))).one()
                now = time.perf_counter()
                t0 = t0 or now
                if n and first is None:
                    first = now
                if n >= args.events:
                    break
                await asyncio.sleep(0.05)
        await engine.dispose()
    assert first is not None
    return float(args.events / (now - first))


async def verification(
    url: str, schema: str | None, args: argparse.Namespace, tmp: str
) -> dict[str, float]:
    settings = AuditSettings(data_dir=Path(tmp), master_keys={"k1": Vault.generate_key()})
    vault = vault_from_settings(settings)
    engine = create_engine(url, search_path=schema)
    await create_all(engine, audit_metadata, runtime_metadata)
    sessions = session_factory(engine)
    # Build the chain in bulk with the same hashing `append` uses (version 2: commitments; the
    # payloads are not sealed here, verification never opens them).
    prev = chain.GENESIS
    stamp = service.stamp(datetime.now(UTC))
    payload = orjson.dumps({"referral_id": "r", "withdrawn_by": "gp"}).decode()
    commitment = chain.commitment(bytes(chain.SALT_BYTES), payload)
    batch: list[dict[str, Any]] = []
    for seq in range(1, args.records + 1):
        values = (
            seq,
            f"e{seq}",
            "referral.withdrawn",
            stamp,
            "intake",
            "gp",
            None,
            f"r{seq % 1000}",
            None,
            "nrm.referrals.v1",
            seq % 6,
            seq,
            commitment,
            prev,
        )
        prev = chain.record_hash_v2(values)
        fields = dict(zip(chain.FIELDS_V2, values, strict=True))
        batch.append({**fields, "payload": None, "version": 2, "hash": prev})
        if len(batch) == 10_000 or seq == args.records:
            async with transaction(sessions) as session:
                await insert_many(session, Record, batch)
            batch = []
    async with transaction(sessions) as session:
        session.add(ChainHead(id=1, sequence=args.records, hash=prev))
        await service.checkpoint(
            session, name=settings.key_name, origin=settings.origin, vault=vault
        )
    async with transaction(sessions) as session:
        vkey = await service.public_key(session, name=settings.key_name, vault=vault)
    online_rounds = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        async with sessions() as session:
            result = await service.verify(session, vkey=vkey)
        online_rounds.append(time.perf_counter() - t0)
        assert result["ok"] and result["records"] == args.records, result
    online = statistics.median(online_rounds)
    async with sessions() as session:
        exported = service.export_lines(session, origin=settings.origin, vkey=vkey, vault=vault)
        lines = [x async for x in exported]
    offline_rounds = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        offline = chain.verify_export(lines, vkey)
        offline_rounds.append(time.perf_counter() - t0)
        assert offline["ok"], offline
    offline_s = statistics.median(offline_rounds)
    await engine.dispose()
    return {
        "online": args.records / online,
        "offline": args.records / offline_s,
        "online_rounds": [round(args.records / x) for x in online_rounds],
    }


async def run(
    kind: str,
    url: str,
    schemas: tuple[str | None, str | None, str | None],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Ingest (batched, then a transaction per event) and verification each get a database
    of their own (file or schema)."""
    with tempfile.TemporaryDirectory() as tmp:
        ingest_rate = await ingest(url.replace("{db}", "ingest"), schemas[0], args, tmp)
    # The same consumer with a transaction per event: the naive way, in the same run.
    with tempfile.TemporaryDirectory() as tmp:
        naive_db = url.replace("{db}", "naive") if schemas[0] is None else url
        naive_rate = await ingest(naive_db, schemas[2], args, tmp, batch_size=1)
    ingested = {
        "database": kind,
        "events": args.events,
        "ingest_events_per_s": round(ingest_rate),
        "ingest_per_event_tx_per_s": round(naive_rate),
    }
    if not args.verify:
        return ingested
    with tempfile.TemporaryDirectory() as tmp:
        rates = await verification(url.replace("{db}", "verify"), schemas[1], args, tmp)
    return {
        **ingested,
        "records": args.records,
        "verify_records_per_s": round(rates["online"]),
        "offline_verify_records_per_s": round(rates["offline"]),
        "verify_rounds": rates["online_rounds"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3, help="verification runs; median kept")
    parser.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also build a chain of --records records and time its verification",
    )
    parser.add_argument("--out", default="bench/results-audit.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/" + "{db}.db"
        results.append(await run("sqlite", url, (None, None, None), args))
    pg = postgres_url()
    if pg:
        async with (
            scratch_schema(pg) as first,
            scratch_schema(pg) as second,
            scratch_schema(pg) as third,
        ):
            results.append(await run("postgresql", pg, (first, second, third), args))
    report("audit", results, args.out)


if __name__ == "__main__":
    asyncio.run(main())
