"""Every benchmark in one run (`make bench`): prints one table and writes bench/results.json.

    .venv/bin/python bench/run.py [--quick] [--out bench/results.json]

1. End to end, in two layouts: `nrm up` (the embedded default, every service in one process
   beside the Tansu broker), and a process per service (`nrm serve`, as deployed); on SQLite,
   then on a PostgreSQL database per service when NRM_BENCH_DATABASE_URL or
   NRM_TEST_DATABASE_URL is set. Idle RSS (the processes and the broker) is read after the
   system settles. A load generator in another process holds the recipient's
   `GET /v1/inbox/stream` open and submits victim referrals at each fixed rate; latency is from
   the POST's 201 to the inbox item arriving on the stream (the POST's own latency is reported
   too). The peak RSS under that load is sampled meanwhile.
2. The component benchmarks (bench/intake.py with its naive endpoint, router.py, notify.py,
   audit.py, insights.py), each a child process with its own load-generating process, on both
   databases.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import postgres_url  # noqa: E402
from tests.e2e.conftest import start_exchange  # noqa: E402
from tests.e2e.test_rules import victim  # noqa: E402
from tests.support import service_databases  # noqa: E402

BODY = victim(region="KZ-79")  # the policy sends it to ngo-south (support) and mvd-ctu
SUBMITTER, WATCHER = "labour-insp", "ngo-south"


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the stack and its broker)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(
                next(li for li in status.splitlines() if li.startswith("VmRSS")).split()[1]
            )
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return round(total / 1024, 1)


async def _token(client: httpx.AsyncClient, url: str, secrets: dict[str, str], who: str) -> Any:
    r = await client.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(who, secrets[who])
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _generate(
    urls: dict[str, str], secrets: dict[str, str], rate: float, seconds: float
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        submitter = await _token(client, urls["identity"], secrets, SUBMITTER)
        watcher = await _token(client, urls["identity"], secrets, WATCHER)
        accepted: dict[str, float] = {}
        arrived: dict[str, float] = {}
        connected = asyncio.Event()

        async def watch() -> None:
            async with client.stream(
                "GET", f"{urls['notify']}/v1/inbox/stream", headers=watcher
            ) as r:
                connected.set()
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        # The first change of a referral's delivery is its arrival.
                        item = json.loads(line[6:])
                        arrived.setdefault(item["referral_id"], time.perf_counter())

        stream = asyncio.create_task(watch())
        await asyncio.wait_for(connected.wait(), 30)
        late = 0

        posted: list[float] = []  # POST → 201 (the submitter's wait)

        async def post() -> None:
            sent = time.perf_counter()
            try:
                r = await client.post(
                    f"{urls['intake']}/v1/referrals", json=BODY, headers=submitter
                )
            except httpx.HTTPError:
                return
            if r.status_code == 201:
                accepted[r.json()["id"]] = time.perf_counter()
                posted.append((accepted[r.json()["id"]] - sent) * 1000)

        posts = []
        start = time.perf_counter()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                late += 1
            posts.append(asyncio.create_task(post()))
        await asyncio.gather(*posts)
        sent_for = time.perf_counter() - start
        deadline = time.perf_counter() + 60
        while set(accepted) - set(arrived) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        stream.cancel()
    latencies = sorted((arrived[rid] - t) * 1000 for rid, t in accepted.items() if rid in arrived)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    a = statistics.quantiles(posted, n=100) if len(posted) > 1 else [0.0] * 99
    return {
        "rate": rate,
        "achieved_rate": round(len(accepted) / sent_for, 1),
        "submitted": int(rate * seconds),
        "accepted": len(accepted),
        "arrived": len(set(accepted) & set(arrived)),
        "late_sends": late,
        "post_p50_ms": round(a[49], 1),
        "post_p99_ms": round(a[98], 1),
        "p50_ms": round(q[49], 1),
        "p95_ms": round(q[94], 1),
        "p99_ms": round(q[98], 1),
    }


def _load_process(
    urls: dict[str, str], secrets: dict[str, str], rate: float, seconds: float, out: Any
) -> None:
    out.put(asyncio.run(_generate(urls, secrets, rate, seconds)))


def measure(
    pids: list[int], urls: dict[str, str], secrets: dict[str, str], rate: float, seconds: float
) -> dict[str, Any]:
    """Idle RSS of `pids` (and descendants), then a load from another process and the peak RSS
    meanwhile."""
    time.sleep(10)  # settle: start-up work done, consumers idle
    idle = sum(rss_mb(p) for p in pids)
    out: Any = multiprocessing.get_context("spawn").Queue()
    load = multiprocessing.get_context("spawn").Process(
        target=_load_process, args=(urls, secrets, rate, seconds, out)
    )
    load.start()
    peak = idle
    while load.is_alive():
        peak = max(peak, sum(rss_mb(p) for p in pids))
        load.join(0.5)
    result: dict[str, Any] = out.get(timeout=5)
    return {"idle_rss_mb": round(idle, 1), "loaded_rss_mb": round(peak, 1), **result}


def per_service(database: str, rate: float, seconds: float) -> dict[str, Any]:
    """The production layout: a process per service (`nrm serve`), the broker in its own."""
    from tests.faults.conftest import running_cluster

    pg = postgres_url() if database == "postgresql" else None
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with running_cluster(Path(tmp), pg_url=pg, env={"NRM_LOG_LEVEL": "WARNING"}) as cluster:
            healthy_s = time.perf_counter() - started
            urls = {i.service: i.url for i in cluster.instances}
            pids = [i.proc.pid for i in cluster.instances]
            assert cluster.broker.process is not None
            pids.append(cluster.broker.process.pid)
            secrets = json.loads((Path(tmp) / "credentials.json").read_text())
            result = measure(pids, urls, secrets, rate, seconds)
    return {
        "layout": "process per service",
        "database": database,
        "healthy_after_s": round(healthy_s, 1),
        **result,
    }


def embedded(database: str, rate: float, seconds: float) -> dict[str, Any]:
    """`nrm up` (every service in one process, and its broker) as a child process."""
    pg = postgres_url() if database == "postgresql" else None
    # The stack's own defaults, not the small pools the parallel test suite needs.
    env = {"NRM_LOG_LEVEL": "WARNING", "NRM_DATABASE_POOL_SIZE": "10"}
    env["NRM_DATABASE_MAX_OVERFLOW"] = "10"
    with tempfile.TemporaryDirectory() as tmp, service_databases(pg, "bench") as url:
        started = time.perf_counter()
        stack = contextlib.contextmanager(start_exchange)
        with stack(database, Path(tmp), env | ({"NRM_DATABASE_URL": url} if url else {})) as ex:
            healthy_s = time.perf_counter() - started
            urls = dict.fromkeys(("identity", "intake", "notify"), ex.base_url)
            result = measure([ex.pid], urls, ex.secrets, rate, seconds)
    return {
        "layout": "embedded (nrm up)",
        "database": database,
        "healthy_after_s": round(healthy_s, 1),
        **result,
    }


def component(script: str, args: list[str]) -> dict[str, Any]:
    """A component benchmark in a child process; its results file."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / script), *args, "--out", out.name],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return json.loads(Path(out.name).read_text())  # type: ignore[no-any-return]


def table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    cols = list(rows[0])
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[25, 100], help="end-to-end referrals/s"
    )
    parser.add_argument("--seconds", type=float, default=20, help="end-to-end load duration")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"])
    parser.add_argument("--e2e-only", action="store_true", help="skip the component benchmarks")
    parser.add_argument("--out", default="bench/results.json")
    args = parser.parse_args()
    databases = args.databases or (["sqlite", "postgresql"] if postgres_url() else ["sqlite"])
    quick = args.quick
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    }
    results["end_to_end"] = [
        layout(db, rate, 10 if quick else args.seconds)
        for layout in (embedded, per_service)
        for db in databases
        for rate in args.rates
    ]
    table("End to end: POST accepted → inbox stream, and the stack's RSS", results["end_to_end"])
    full: dict[str, tuple[str, list[str]]] = {
        "intake": ("intake.py", ["--rounds", "2"]),
        "router": ("router.py", []),
        "notify": ("notify.py", []),
        "audit": ("audit.py", []),
        "insights": ("insights.py", []),
    }
    smaller: dict[str, list[str]] = {
        "intake": ["--rounds", "1", "--requests", "1000"],
        "router": ["--referrals", "1000"],
        "notify": ["--backlog", "500", "--seconds", "5"],
        "audit": ["--events", "1000", "--records", "20000", "--rounds", "1"],
        "insights": ["--referrals", "500"],
    }
    for name, (script, extra) in ({} if args.e2e_only else full).items():
        results.update(component(script, smaller[name] if quick else extra))
        table(name, results[name])
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
