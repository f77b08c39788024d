"""Every benchmark in one run (`make bench`): prints one table and writes bench/results.json.

    .venv/bin/python bench/run.py [--quick] [--only PART,...] [--out bench/results.json]

Parts (`--only`, comma-separated; all by default): `e2e`, `cpu`, `capacity`, `backlog`, the
components `intake`, `router`, `notify`, `audit`, `insights` (`components` for all five), and
`consumers`.

1. End to end, in two layouts: `nrm up` (the embedded default, every service in one process
   beside the Tansu broker), and a process per service (`nrm serve`, as deployed); on SQLite,
   then on a PostgreSQL database per service when NRM_BENCH_DATABASE_URL or
   NRM_TEST_DATABASE_URL is set. Idle RSS (the processes and the broker) is read after the
   system settles. A load generator in another process holds the recipient's
   `GET /v1/inbox/stream` open and submits victim referrals at each fixed rate; latency is from
   the POST's 201 to the inbox item arriving on the stream (the POST's own latency is reported
   too). The peak RSS under that load is sampled meanwhile.
   The stack's CPU per referral is the CPU time of its processes (and the broker) over the
   load, until the last item arrived, divided by the referrals accepted.
2. `cpu`: that figure alone, for the embedded stack at `--cpu-rate` (e2e rows carry it too).
3. `capacity`: the embedded stack's sustained capacity. One stack per database takes the
   `--capacity-rates` in turn, `--step-seconds` each (the backlog of a step drains before the
   next); the capacity is the highest rate whose inbox p99 stays <= 1 s with at least 95% of
   the rate accepted and every item arrived. The stepping stops at the first rate that fails.
4. `backlog`: `--backlog` referrals accepted while the consumers are stopped, then the time
   until every inbox item exists once they start. Identity and intake run alone (`nrm serve`,
   on a broker of the bench's own that keeps the topics) until every referral is accepted and
   relayed; then, in the embedded layout, they stop and `nrm up` starts on the same databases
   and broker; in the process-per-service layout, router, notify, audit and insights start.
   The time runs from that start.
5. The component benchmarks (bench/intake.py with its naive endpoint, router.py, notify.py,
   audit.py, insights.py), each a child process with its own load-generating process, on both
   databases.
6. `consumers`: the issue's component targets in one table: audit ingest (events/s), router
   decisions/s and notify deliveries/s, each as the service runs (up to 100 events per
   transaction) and, in the same run, the same consumer with a transaction per event (the
   naive way), and the ratio. Taken from the `router`, `notify` and `audit` parts when they
   run too; otherwise their throughput phases only (no verification, no stream latency).

Consumers' fetch wait: `--fetch-wait-ms`, the product's default unless given (the test
suite's 100 ms would otherwise leak in through the test helpers imported here).
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.idle import cpu_seconds, tree  # noqa: E402
from bench.scratch import postgres_url  # noqa: E402
from services.common.settings import Settings  # noqa: E402
from tests.e2e.conftest import start_exchange  # noqa: E402
from tests.e2e.test_rules import victim  # noqa: E402
from tests.support import answers, service_databases, wait_for  # noqa: E402

BODY = victim(region="KZ-79")  # the policy sends it to ngo-south (support) and mvd-ctu
SUBMITTER, WATCHER = "labour-insp", "ngo-south"
RECIPIENTS = 2
PARTS = (
    *("e2e", "cpu", "capacity", "backlog"),
    *("intake", "router", "notify", "audit", "insights", "consumers"),
)
COMPONENTS = ("intake", "router", "notify", "audit", "insights")
# The component targets: (part, its figure batched, the same with a transaction per
# event, what it counts, target per second).
CONSUMER_TARGETS = (
    ("audit", "ingest_events_per_s", "ingest_per_event_tx_per_s", "audit ingest events", 20000),
    ("router", "decisions_per_s", "decisions_per_s", "router decisions", 5000),
    ("notify", "inbox_notifications_per_s", "inbox_notifications_per_s", "notify deliveries", 3000),
)
# Set by main(): the consumers' fetch wait every stack started here runs with.
STACK_ENV: dict[str, str] = {}


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of `pids` and all their descendants."""
    return cpu_seconds([p for pid in pids for p in tree(pid)])


def cpu_by_process(names: dict[int, str]) -> dict[str, float]:
    """CPU seconds of each process in `names` (pid -> label) and, under its own command name,
    of each of their descendants (the embedded stack's broker)."""
    found: dict[str, float] = {}
    for pid, name in names.items():
        for p in tree(pid):
            label = name if p == pid else _command(p)
            found[label] = found.get(label, 0.0) + cpu_seconds([p])
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().split("-", 1)[0]
    except FileNotFoundError:
        return str(pid)


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
    """Open-loop load: a POST every 1/rate s whatever is in flight, and the recipient's inbox
    stream. On aiohttp: with a hundred requests in flight httpx's pool cost this process a
    whole core, so it fell behind and took that core from the stack under test (2026-11-30)."""
    import aiohttp

    async with httpx.AsyncClient(timeout=60) as client:
        submitter = await _token(client, urls["identity"], secrets, SUBMITTER)
        watcher = await _token(client, urls["identity"], secrets, WATCHER)
    body = json.dumps(BODY).encode()
    post_headers = {**submitter, "Content-Type": "application/json"}
    # No connection limit: a send never waits for a connection to come free.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        accepted: dict[str, float] = {}
        arrived: dict[str, float] = {}
        connected = asyncio.Event()

        async def watch() -> None:
            async with session.get(
                f"{urls['notify']}/v1/inbox/stream",
                headers=watcher,
                timeout=aiohttp.ClientTimeout(total=None),
            ) as r:
                connected.set()
                async for line in r.content:
                    if line.startswith(b"data: "):
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
                async with session.post(
                    f"{urls['intake']}/v1/referrals", data=body, headers=post_headers
                ) as r:
                    answer = await r.read()
            except (aiohttp.ClientError, TimeoutError):
                return
            if r.status == 201:
                now = accepted[json.loads(answer)["id"]] = time.perf_counter()
                posted.append((now - sent) * 1000)

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
        # Items missing because the stream itself ended are said so, not left as lateness.
        stream_ended = stream.done()
        stream.cancel()
        (ended,) = await asyncio.gather(stream, return_exceptions=True)
        if stream_ended:
            print(f"the inbox stream ended before the run did: {ended!r}", file=sys.stderr)
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
    pids: list[int],
    urls: dict[str, str],
    secrets: dict[str, str],
    rate: float,
    seconds: float,
    *,
    settle: float = 10,
    names: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Idle RSS of `pids` (and descendants), then a load from another process, the peak RSS
    and the CPU time of `pids` meanwhile, in all and by process (`names`: pid -> label;
    "nrm up" for a single pid by default)."""
    names = names or {pids[0]: "nrm up"}
    time.sleep(settle)  # start-up work done, consumers idle
    idle = sum(rss_mb(p) for p in pids)
    out: Any = multiprocessing.get_context("spawn").Queue()
    load = multiprocessing.get_context("spawn").Process(
        target=_load_process, args=(urls, secrets, rate, seconds, out)
    )
    cpu_before = tree_cpu_seconds(pids)
    by_process_before = cpu_by_process(names)
    load.start()
    peak = idle
    while load.is_alive():
        peak = max(peak, sum(rss_mb(p) for p in pids))
        load.join(0.5)
    cpu = tree_cpu_seconds(pids) - cpu_before
    by_process = cpu_by_process(names)
    result: dict[str, Any] = out.get(timeout=5)
    accepted = max(result["accepted"], 1)
    return {
        "idle_rss_mb": round(idle, 1),
        "loaded_rss_mb": round(peak, 1),
        **result,
        "stack_cpu_s": round(cpu, 1),
        "cpu_ms_per_referral": round(cpu * 1000 / accepted, 2),
        "cpu_ms_per_referral_by_process": {
            name: round((seconds - by_process_before.get(name, 0.0)) * 1000 / accepted, 2)
            for name, seconds in sorted(by_process.items(), key=lambda kv: kv[0])
        },
    }


def per_service(database: str, rate: float, seconds: float) -> dict[str, Any]:
    """The production layout: a process per service (`nrm serve`), the broker in its own."""
    from tests.faults.conftest import running_cluster

    pg = postgres_url() if database == "postgresql" else None
    env = {"NRM_LOG_LEVEL": "WARNING", **STACK_ENV}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with running_cluster(Path(tmp), pg_url=pg, env=env) as cluster:
            healthy_s = time.perf_counter() - started
            urls = {i.service: i.url for i in cluster.instances}
            names = {i.proc.pid: i.service for i in cluster.instances}
            assert cluster.broker.process is not None
            names[cluster.broker.process.pid] = "tansu"
            pids = list(names)
            secrets = json.loads((Path(tmp) / "credentials.json").read_text())
            result = measure(pids, urls, secrets, rate, seconds, names=names)
    return {
        "layout": "process per service",
        "database": database,
        "healthy_after_s": round(healthy_s, 1),
        **result,
    }


@contextlib.contextmanager
def embedded_stack(database: str) -> Iterator[tuple[Any, float]]:
    """`nrm up` (every service in one process, and its broker) as a child process; yields it
    and the seconds it took to be healthy."""
    pg = postgres_url() if database == "postgresql" else None
    # The stack's own defaults, not the small pools the parallel test suite needs.
    env = {"NRM_LOG_LEVEL": "WARNING", "NRM_DATABASE_POOL_SIZE": "10"}
    env["NRM_DATABASE_MAX_OVERFLOW"] = "10"
    env |= STACK_ENV
    with tempfile.TemporaryDirectory() as tmp, service_databases(pg, "bench") as url:
        started = time.perf_counter()
        stack = contextlib.contextmanager(start_exchange)
        with stack(database, Path(tmp), env | ({"NRM_DATABASE_URL": url} if url else {})) as ex:
            yield ex, time.perf_counter() - started


def embedded(database: str, rate: float, seconds: float) -> dict[str, Any]:
    """The embedded default under one fixed rate."""
    with embedded_stack(database) as (ex, healthy_s):
        urls = dict.fromkeys(("identity", "intake", "notify"), ex.base_url)
        result = measure([ex.pid], urls, ex.secrets, rate, seconds)
    return {
        "layout": "embedded (nrm up)",
        "database": database,
        "healthy_after_s": round(healthy_s, 1),
        **result,
    }


def capacity(database: str, rates: list[float], seconds: float) -> dict[str, Any]:
    """The highest of `rates` (in order) the embedded stack sustains: inbox p99 <= 1 s, at least
    95% of the rate accepted, every item arrived. Stops at the first rate that fails."""
    steps: list[dict[str, Any]] = []
    sustained = 0.0
    with embedded_stack(database) as (ex, _):
        urls = dict.fromkeys(("identity", "intake", "notify"), ex.base_url)
        for n, rate in enumerate(rates):
            # The previous step drained before its load process ended; a short pause between.
            result = measure([ex.pid], urls, ex.secrets, rate, seconds, settle=10 if n == 0 else 2)
            passed = (
                result["p99_ms"] <= 1000
                and result["achieved_rate"] >= 0.95 * rate
                and result["arrived"] == result["submitted"]
            )
            steps.append({"database": database, **result, "passed": passed})
            if not passed:
                break
            sustained = rate
    return {"database": database, "sustained_per_s": sustained, "steps": steps}


def backlog(database: str, layout: str, referrals: int) -> dict[str, Any]:
    """`referrals` accepted while every consumer but intake's is stopped, then the time until
    every inbox item (a delivery per recipient) exists once they run."""
    from services.common.broker import EmbeddedBroker, free_port
    from services.common.crypto import Vault
    from services.notify.models import Delivery
    from tests.faults.conftest import Cluster

    pg = postgres_url() if database == "postgresql" else None
    with tempfile.TemporaryDirectory() as tmp, service_databases(pg, "backlog") as url:
        data_dir = Path(tmp)
        database_url = url or f"sqlite+aiosqlite:///{data_dir}/{{service}}.db"
        broker = EmbeddedBroker(log_file=data_dir / "broker.log")
        broker.start_process()
        port = free_port()  # identity's, then the embedded stack's: the tokens' issuer
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NRM_")},
            "NRM_DATA_DIR": str(data_dir),
            "NRM_DATABASE_URL": database_url,
            "NRM_KAFKA_BOOTSTRAP": broker.bootstrap,
            "NRM_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "NRM_AUTH_ISSUER": f"http://127.0.0.1:{port}",
            "NRM_MASTER_KEYS": json.dumps({"k1": Vault.generate_key()}),
            "NRM_LOG_LEVEL": "WARNING",
            **STACK_ENV,
        }
        kind = "sqlite" if url is None else "postgresql"
        cluster = Cluster(kind, broker, data_dir, env, database_url)
        expected = referrals * RECIPIENTS
        inbox = select(func.count()).select_from(Delivery)
        up: subprocess.Popen[bytes] | None = None
        try:
            accepted_s = asyncio.run(_accept(cluster, port, referrals))
            started = time.perf_counter()
            if layout == "embedded":
                for instance in list(cluster.instances):
                    asyncio.run(cluster.stop(instance))
                with (data_dir / "stack.log").open("wb") as log:
                    up = subprocess.Popen(
                        [sys.executable, "-m", "services.cli", "up"],
                        cwd=ROOT,
                        env={**env, "NRM_PORT": str(port)},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                healthy = f"http://127.0.0.1:{port}/healthz"
                asyncio.run(
                    wait_for(lambda: answers(healthy, up, data_dir / "stack.log"), timeout=180)
                )
            else:

                async def start_consumers() -> None:
                    for service in ("router", "notify", "audit", "insights"):
                        await cluster.start(service, migrate=True)

                asyncio.run(start_consumers())
            healthy_s = time.perf_counter() - started
            drained_s: float | None = None
            deadline = started + 900
            count = 0
            while time.perf_counter() < deadline:
                count = asyncio.run(cluster.scalar("notify", inbox))
                if count >= expected:
                    drained_s = time.perf_counter() - started
                    break
                time.sleep(0.5)
        finally:
            if up is not None:
                up.send_signal(signal.SIGINT)
                up.wait(timeout=60)
            for instance in cluster.instances:
                instance.proc.send_signal(signal.SIGTERM)
            for instance in cluster.instances:
                instance.proc.wait(timeout=60)
            broker.stop()
    return {
        "layout": "embedded (nrm up)" if layout == "embedded" else "process per service",
        "database": database,
        "referrals": referrals,
        "accepted_per_s": round(referrals / accepted_s, 1),
        "healthy_after_s": round(healthy_s, 1),
        "drained_after_s": round(drained_s, 1) if drained_s is not None else None,
        "inbox_items": count,
        "drained_per_s": round(referrals / drained_s, 1) if drained_s else None,
    }


async def _accept(cluster: Any, port: int, referrals: int) -> float:
    """Identity and intake alone; `referrals` accepted (32 at a time) and relayed to the broker.
    Returns the seconds the submissions took."""
    from services.common.bus import ensure_topics
    from services.common.models import OutboxRecord

    await cluster.broker.wait_ready()
    await ensure_topics(cluster.broker.bootstrap, partitions=Settings().kafka_partitions)
    await cluster.start("identity", migrate=True, port=port)
    await cluster.start("intake", migrate=True)
    headers = await cluster.headers(SUBMITTER)
    todo = iter(range(referrals))
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:

        async def submitter() -> None:
            for _ in todo:
                r = await client.post(cluster.url("/v1/referrals"), json=BODY, headers=headers)
                r.raise_for_status()

        await asyncio.gather(*(submitter() for _ in range(32)))
    took = time.perf_counter() - started
    unsent = select(func.count()).where(col(OutboxRecord.published_at).is_(None))

    async def relayed() -> bool:
        return int(await cluster.scalar("intake", unsent)) == 0

    await wait_for(relayed, timeout=300, interval=0.5)
    return took


# Each component took 1-5 minutes on the slowest development machine (2026-11-30).
COMPONENT_TIMEOUT_S = 1800


def component(script: str, args: list[str]) -> dict[str, Any]:
    """A component benchmark in a child process; its results file."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        # Its own session, so that a stuck component is stopped with everything it started
        # (servers, broker) and fails the run, naming the script.
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / script), *args, "--out", out.name],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=COMPONENT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if code != 0:
            raise subprocess.CalledProcessError(code, proc.args)
        return json.loads(Path(out.name).read_text())  # type: ignore[no-any-return]


def consumer_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The component targets' table from the router, notify and audit results: batched and a
    transaction per event, in the same run, and the ratio."""
    rows = []
    for part, batched_key, naive_key, measure, target in CONSUMER_TARGETS:
        for database in dict.fromkeys(r["database"] for r in results[part]):
            found = [r for r in results[part] if r["database"] == database]
            if part == "audit":  # one row holds both
                batched, naive = found[0][batched_key], found[0][naive_key]
            else:
                by_size = {r["events_per_transaction"]: r for r in found}
                batched, naive = by_size["up to 100"][batched_key], by_size["1"][naive_key]
            rows.append(
                {
                    "measure": measure,
                    "database": database,
                    "batched_per_s": batched,
                    "per_event_tx_per_s": naive,
                    "ratio": round(batched / naive, 1) if naive else None,
                    "target_per_s": target,
                    "met": batched >= target,
                }
            )
    return rows


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
    parser.add_argument(
        "--only", help=f"comma-separated parts: {', '.join(PARTS)}, components (default: all)"
    )
    parser.add_argument("--e2e-only", action="store_true", help="the same as --only e2e")
    parser.add_argument(
        "--layouts", nargs="+", choices=["embedded", "per-service"], help="end to end, backlog"
    )
    parser.add_argument("--cpu-rate", type=float, default=100, help="referrals/s for `cpu`")
    parser.add_argument(
        "--capacity-rates",
        type=float,
        nargs="+",
        default=[50, 100, 150, 200, 300, 400, 500, 600, 800, 1000],
    )
    parser.add_argument("--step-seconds", type=float, default=20, help="per capacity step")
    parser.add_argument("--backlog", type=int, default=10_000, help="referrals in the backlog")
    parser.add_argument(
        "--fetch-wait-ms",
        type=int,
        default=Settings.model_fields["kafka_fetch_max_wait_ms"].default,
        help="consumers' fetch wait in every stack (default: the product's)",
    )
    parser.add_argument("--out", default="bench/results.json")
    args = parser.parse_args()
    databases = args.databases or (["sqlite", "postgresql"] if postgres_url() else ["sqlite"])
    quick = args.quick
    parts = set(PARTS)
    if args.e2e_only:
        parts = {"e2e"}
    if args.only:
        names = {p.strip() for p in args.only.split(",") if p.strip()}
        if "components" in names:
            names = (names - {"components"}) | set(COMPONENTS)
        unknown = names - set(PARTS)
        if unknown:
            parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
        parts = names
    layouts = args.layouts or ["embedded", "per-service"]
    STACK_ENV["NRM_KAFKA_FETCH_MAX_WAIT_MS"] = str(args.fetch_wait_ms)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average": os.getloadavg(),
            "fetch_wait_ms": args.fetch_wait_ms,
            # The background groups' wait: the stack's default unless set in the environment.
            "background_fetch_wait_ms": int(
                os.environ.get(
                    "NRM_KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS",
                    Settings.model_fields["kafka_background_fetch_max_wait_ms"].default,
                )
            ),
        }
    }
    if "e2e" in parts:
        chosen = {"embedded": embedded, "per-service": per_service}
        results["end_to_end"] = [
            chosen[layout](db, rate, 10 if quick else args.seconds)
            for layout in layouts
            for db in databases
            for rate in args.rates
        ]
        table(
            "End to end: POST accepted → inbox stream, the stack's RSS and CPU",
            results["end_to_end"],
        )
    if "cpu" in parts:
        results["cpu"] = [
            {
                k: v
                for k, v in embedded(db, args.cpu_rate, 10 if quick else args.seconds).items()
                if k in CPU_COLUMNS
            }
            for db in databases
        ]
        table("Stack CPU per referral (embedded)", results["cpu"])
    if "capacity" in parts:
        rates = args.capacity_rates
        step = 5 if quick else args.step_seconds
        results["capacity"] = [capacity(db, rates, step) for db in databases]
        table(
            "Sustained capacity (embedded): highest rate with inbox p99 <= 1 s",
            [{k: v for k, v in c.items() if k != "steps"} for c in results["capacity"]],
        )
        table(
            "Capacity steps",
            [
                {k: v for k, v in step.items() if k in STEP_COLUMNS}
                for c in results["capacity"]
                for step in c["steps"]
            ],
        )
    if "backlog" in parts:
        size = min(args.backlog, 1000) if quick else args.backlog
        results["backlog"] = [backlog(db, layout, size) for layout in layouts for db in databases]
        table("Backlog: accepted with consumers stopped, then drained", results["backlog"])
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
    for name, (script, extra) in full.items():
        if name not in parts:
            continue
        results.update(component(script, smaller[name] if quick else extra))
        table(name, results[name])
    if "consumers" in parts:
        # Throughput phases only, for the parts not run in full above.
        throughput_only = {"notify": ["--no-latency"], "audit": ["--no-verify"], "router": []}
        for name, *_ in CONSUMER_TARGETS:
            if name not in results:
                script = full[name][0]
                extra = smaller[name] if quick else full[name][1]
                results.update(component(script, extra + throughput_only[name]))
        results["consumers"] = consumer_rows(results)
        table(
            "Consumers against the component targets (batched / a transaction per event)",
            results["consumers"],
        )
    results["machine"]["load_average_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


CPU_COLUMNS = {"database", "rate", "achieved_rate", "accepted", "stack_cpu_s"} | {
    "cpu_ms_per_referral",
    "p50_ms",
    "p99_ms",
}
STEP_COLUMNS = {"database", "rate", "achieved_rate", "late_sends", "post_p50_ms"} | {
    "post_p99_ms",
    "p50_ms",
    "p99_ms",
    "arrived",
    "cpu_ms_per_referral",
    "passed",
}


if __name__ == "__main__":
    main()
