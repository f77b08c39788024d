"""Accepted referrals/s through POST /v1/referrals, against a naive FastAPI + SQLModel endpoint.

    .venv/bin/python bench/intake.py [--requests 6000] [--concurrency 32 64] [--rounds 3]

Both servers run under uvicorn in their own process on loopback (one worker each), on SQLite
and, when NRM_BENCH_DATABASE_URL or NRM_TEST_DATABASE_URL is set, PostgreSQL. The load comes
from a separate process. Intake does the whole job (bearer-token check, validation, envelope
encryption, reference number, outbox event, relay to the embedded broker); the naive endpoint
validates the same body and inserts it as JSON. At each concurrency, the two endpoints are
measured in alternating rounds and the median round is reported, since a single short run on
a 2-core machine varies by ±15%.
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import postgres_url, report, scratch_schema, serve_http  # noqa: E402
from services.common.broker import EmbeddedBroker, free_port  # noqa: E402
from tests.tokens import AUDIENCE, ISSUER, TokenMint  # noqa: E402
from tests.unit.test_contracts import REFERRAL_EXAMPLE  # noqa: E402


def serve_intake(
    url: str, schema: str | None, port: int, bootstrap: str, jwk: str, data: str
) -> None:
    from joserfc.jwk import ECKey

    from services.common.crypto import Vault
    from services.common.db import create_engine
    from services.intake.app import create_app
    from services.intake.settings import IntakeSettings

    public = ECKey.import_key(json.loads(jwk)).as_dict(private=False)

    async def jwks() -> dict[str, Any]:
        return {"keys": [public]}

    settings = IntakeSettings(
        data_dir=Path(data),
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        master_keys={"k1": Vault.generate_key()},
        kafka_session_timeout_ms=2000,
    )
    app = create_app(
        settings, bootstrap=bootstrap, engine=create_engine(url, search_path=schema), jwks=jwks
    )
    serve_http(app, port)


def serve_naive(url: str, schema: str | None, port: int) -> None:
    """What a tutorial endpoint looks like: validate, insert, commit."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from fastapi import Depends, FastAPI
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlmodel import JSON, Field, SQLModel
    from sqlmodel.ext.asyncio.session import AsyncSession

    from contracts.referrals import ReferralIn

    class NaiveReferral(SQLModel, table=True):
        id: int | None = Field(default=None, primary_key=True)
        body: dict[str, Any] = Field(sa_type=JSON)

    kwargs: dict[str, Any] = {}
    if schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    elif url.startswith("sqlite"):
        # Wait for the file's lock rather than answer 500 after sqlite3's default 5 s: at 64
        # concurrent requests it did (2026-11-30), and the load generator then died.
        kwargs["connect_args"] = {"timeout": 60}
    engine = create_async_engine(url.replace("bench.db", "naive.db"), **kwargs)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        yield

    app = FastAPI(lifespan=lifespan)

    async def session() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(engine) as s:
            yield s

    @app.post("/naive", status_code=201)
    async def create(body: ReferralIn, s: AsyncSession = Depends(session)) -> dict[str, Any]:
        row = NaiveReferral(body=body.model_dump(mode="json"))
        s.add(row)
        await s.commit()
        await s.refresh(row)
        return {"id": row.id}

    serve_http(app, port)


def load(
    url: str, headers: dict[str, str], n: int, concurrency: int, out: "multiprocessing.Queue[Any]"
) -> None:
    """Runs in its own process; aiohttp, since httpx tops out near 300 requests/s here."""
    import aiohttp

    body = REFERRAL_EXAMPLE.encode()

    async def main() -> tuple[float, int]:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as client:
            accepted = 0
            remaining = n

            async def worker() -> None:
                nonlocal accepted, remaining
                while remaining > 0:
                    remaining -= 1
                    async with client.post(url, data=body, headers=headers) as r:
                        await r.read()
                        accepted += r.status == 201

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - t0, accepted

    out.put(asyncio.run(main()))


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(400):
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise TimeoutError(url)


def measure(url: str, headers: dict[str, str], requests: int, concurrency: int) -> float:
    """Accepted requests/s; every request must be accepted."""
    queue: multiprocessing.Queue[Any] = multiprocessing.Queue()
    proc = multiprocessing.Process(target=load, args=(url, headers, requests, concurrency, queue))
    proc.start()
    # A load process that dies (a reset connection raises in it) puts nothing: fail the run
    # rather than wait for it forever.
    while True:
        try:
            seconds, accepted = queue.get(timeout=1)
            break
        except Empty:
            if not proc.is_alive() and queue.empty():  # it may have put its result and exited
                died = f"{url}: the load process died (exit code {proc.exitcode})"
                raise RuntimeError(died) from None
    proc.join()
    if accepted != requests:
        raise RuntimeError(f"{url}: only {accepted} of {requests} accepted")
    return float(accepted / seconds)


async def run(
    kind: str, url: str, schema: str | None, args: argparse.Namespace, tmp: str
) -> list[dict[str, Any]]:
    mint = TokenMint()
    jwk = json.dumps(mint.key.as_dict(private=True))
    async with EmbeddedBroker() as broker:
        from services.common.bus import ensure_topics

        await ensure_topics(broker.bootstrap, partitions=6)
        ip, npt = free_port(), free_port()
        intake = multiprocessing.Process(
            target=serve_intake, args=(url, schema, ip, broker.bootstrap, jwk, tmp)
        )
        naive = multiprocessing.Process(target=serve_naive, args=(url, schema, npt))
        intake.start()
        naive.start()
        try:
            await wait_ready(f"http://127.0.0.1:{ip}/healthz")
            await wait_ready(f"http://127.0.0.1:{npt}/docs")
            headers = {
                "content-type": "application/json",
                **mint.headers("labour-insp", "referrer"),
            }
            targets = {
                "intake": (f"http://127.0.0.1:{ip}/v1/referrals", headers),
                "naive": (f"http://127.0.0.1:{npt}/naive", {"content-type": "application/json"}),
            }
            for url_, headers_ in targets.values():  # warm up: first requests load code lists
                measure(url_, headers_, 300, 16)
            rows = []
            for concurrency in args.concurrency:
                rates: dict[str, list[float]] = {name: [] for name in targets}
                for _ in range(args.rounds):
                    for name, (url_, headers_) in targets.items():
                        rates[name].append(measure(url_, headers_, args.requests, concurrency))
                intake_rate = statistics.median(rates["intake"])
                naive_rate = statistics.median(rates["naive"])
                rows.append(
                    {
                        "database": kind,
                        "concurrency": concurrency,
                        "requests_per_round": args.requests,
                        "rounds": args.rounds,
                        "intake_accepted_per_s": round(intake_rate),
                        "naive_accepted_per_s": round(naive_rate),
                        "ratio": round(intake_rate / naive_rate, 2),
                        "intake_rounds": [round(r) for r in rates["intake"]],
                        "naive_rounds": [round(r) for r in rates["naive"]],
                    }
                )
            return rows
        finally:
            for p in (intake, naive):
                p.terminate()
                p.join()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6000, help="per round")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench/results-intake.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results += await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", None, args, tmp)
    pg = postgres_url()
    if pg:
        async with scratch_schema(pg) as schema:
            with tempfile.TemporaryDirectory() as tmp:
                results += await run("postgresql", pg, schema, args, tmp)
    report("intake", results, args.out)


if __name__ == "__main__":
    asyncio.run(main())
