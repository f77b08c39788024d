"""Restart after a crash with a day's outbox to replay (DESIGN.md: healthy in <= 15 s).

    .venv/bin/python bench/restart.py [--referrals 10000] [--postgres URL] [--reuse DATA_DIR]

`nrm up` (the embedded default: in-memory broker, replay on start) takes `--referrals` victim
referrals (a day's worth), lets the pipeline drain, stops, and then marks every outbox row of
every service as not yet delivered, as if no consumer had confirmed any of the day's events:
the most a start can have to replay. It is then started again and timed: to healthy (every
service has re-published its undelivered rows before it serves) and to caught up (every
consumer group has read, and dropped as duplicates, all of them). Prints one JSON object.
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.common.broker import free_port  # noqa: E402
from services.stack import SERVICES  # noqa: E402
from tests.e2e.test_rules import victim  # noqa: E402
from tests.support import service_databases  # noqa: E402

BODY = victim(region="KZ-79")
SUBMITTER = "labour-insp"


def urls(database_url: str | None, data_dir: Path) -> dict[str, str]:
    pattern = database_url or f"sqlite+aiosqlite:///{data_dir}/{{service}}.db"
    return {s: pattern.format(service=s) for s in SERVICES}


async def scalar(url: str, sql: str) -> int:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            return int((await conn.execute(text(sql))).scalar_one())
    finally:
        await engine.dispose()


async def outbox(dbs: dict[str, str], where: str = "") -> int:
    return sum([await scalar(u, f"SELECT count(*) FROM outbox {where}") for u in dbs.values()])


async def undeliver(dbs: dict[str, str]) -> None:
    for url in dbs.values():
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE outbox SET delivered_at = NULL"))
        finally:
            await engine.dispose()


async def wait(check: Any, timeout: float, interval: float = 0.1) -> float:
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not done within {timeout} s")
        await asyncio.sleep(interval)
    return time.monotonic() - start


async def healthy(base: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{base}/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def submit(base: str, data_dir: Path, n: int, concurrency: int = 32) -> None:
    secrets = json.loads((data_dir / "credentials.json").read_text())
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        r = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(SUBMITTER, secrets[SUBMITTER]),
        )
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        todo = iter(range(n))

        async def worker() -> None:
            for _ in todo:
                r = await client.post("/v1/referrals", json=BODY, headers=headers)
                r.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def main(referrals: int, database_url: str | None, reuse: Path | None) -> dict[str, Any]:
    data_dir = reuse or Path(tempfile.mkdtemp(prefix="nrm-restart-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NRM_")}
    env |= {"NRM_DATA_DIR": str(data_dir), "NRM_PORT": str(port), "NRM_LOG_LEVEL": "WARNING"}
    if database_url:
        env["NRM_DATABASE_URL"] = database_url
    base, log = f"http://127.0.0.1:{port}", data_dir / "stack.log"
    dbs = urls(database_url, data_dir)

    submitted_s = None
    if reuse is None:
        proc = start(env, log)
        await wait(lambda: healthy(base), timeout=120)
        t0 = time.monotonic()
        await submit(base, data_dir, referrals)
        submitted_s = time.monotonic() - t0
        await wait(lambda: _all_delivered(dbs), timeout=1800, interval=1)
        proc.send_signal(signal.SIGINT)
        proc.wait(120)

    await undeliver(dbs)
    rows = await outbox(dbs)
    t0 = time.monotonic()
    proc = start(env, log)
    to_healthy = await wait(lambda: healthy(base), timeout=600)
    to_caught_up = to_healthy + await wait(lambda: _all_delivered(dbs), timeout=1800)
    proc.send_signal(signal.SIGINT)
    proc.wait(120)
    return {
        "database": "postgresql" if database_url else "sqlite",
        "referrals": await scalar(dbs["router"], "SELECT count(*) FROM outbox")
        if reuse
        else referrals,
        "submitted_per_s": round(referrals / submitted_s) if submitted_s else None,
        "outbox_rows_replayed": rows,
        "restart_to_healthy_s": round(to_healthy, 1),
        "restart_to_caught_up_s": round(to_caught_up, 1),
        "data_dir": str(data_dir),
    }


async def _all_delivered(dbs: dict[str, str]) -> bool:
    return await outbox(dbs, "WHERE delivered_at IS NULL") == 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=10_000)
    parser.add_argument(
        "--postgres", default=None, help="A PostgreSQL URL: a database per service beside it"
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="The data folder of an earlier SQLite run: time only the restart",
    )
    args = parser.parse_args()
    with service_databases(args.postgres, "restart") as url:
        print(json.dumps(asyncio.run(main(args.referrals, url, args.reuse)), indent=2))
