"""The embedded stack's event-loop time by task under a fixed load: what limits it, by the code
that spends it.

    .venv/bin/python bench/tasks.py [--rate 100] [--seconds 30] [--window 15] [--database sqlite]

py-spy sees SQLAlchemy's greenlet frames without the task that runs them (nearly half of the
loop's samples at 100/s). This times each callback the loop runs with the thread's CPU clock
and books it to the task it steps; a step runs its greenlets to completion, so statements count
for the consumer, relay or request that ran them. The stack runs with `bench/hooks` on its
PYTHONPATH, which also swaps uvloop for the standard asyncio loop (uvloop's callbacks cannot be
wrapped): the loop's own share differs from production, the tasks' shares barely. On SQLite,
statements inside a write transaction run on the loop's thread and count; commits, and reads
outside a write transaction, run on the driver's worker threads and appear only in the process
total printed above the table.
"""

import argparse
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import STACK_ENV, _load_process, embedded_stack  # noqa: E402
from services.common.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100, help="referrals/s")
    parser.add_argument("--seconds", type=float, default=30, help="load duration")
    parser.add_argument("--window", type=float, default=15, help="seconds counted, mid-load")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="nrm-tasks-")) / "tasks.json"
    # The product's fetch wait, as `bench/run.py` sets it (the test helpers imported with it
    # would otherwise leave the suite's 100 ms in the environment).
    wait = Settings.model_fields["kafka_fetch_max_wait_ms"].default
    STACK_ENV["NRM_KAFKA_FETCH_MAX_WAIT_MS"] = str(wait)
    os.environ["NRM_BENCH_TASK_CPU"] = str(out)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "bench" / "hooks"), os.environ.get("PYTHONPATH")) if p
    )
    with embedded_stack(args.database) as (ex, _):
        time.sleep(10)  # start-up work done
        urls = dict.fromkeys(("identity", "intake", "notify"), ex.base_url)
        results: Any = multiprocessing.get_context("spawn").Queue()
        load = multiprocessing.get_context("spawn").Process(
            target=_load_process, args=(urls, ex.secrets, args.rate, args.seconds, results)
        )
        load.start()
        time.sleep(max(0.0, (args.seconds - args.window) / 2) + 3)  # the generator's start
        os.kill(ex.pid, signal.SIGUSR1)
        time.sleep(args.window)
        os.kill(ex.pid, signal.SIGUSR2)
        load.join()
        generated = results.get(timeout=5)
        deadline = time.monotonic() + 10
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    report = json.loads(out.read_text())
    loop = report["loop_thread_s"]
    referrals = generated["achieved_rate"] * args.window  # about those accepted in the window
    print(
        f"embedded, {args.database}, {args.rate:g}/s ({generated['achieved_rate']}/s achieved, "
        f"inbox p50 {generated['p50_ms']} ms, p99 {generated['p99_ms']} ms); "
        f"{args.window:g} s counted: event-loop thread {loop:.2f} CPU-s "
        f"({100 * loop / args.window:.0f}% of a core), process {report['process_s']:.2f} CPU-s"
    )
    print("\n| task on the event loop | CPU-s | share of the loop | ms per referral |")
    print("|---|---|---|---|")
    for row in report["tasks"][:25]:
        print(
            f"| {row['task'][:160]} | {row['seconds']:.2f} | {100 * row['seconds'] / loop:.1f}% "
            f"| {1000 * row['seconds'] / referrals:.2f} |"
        )


if __name__ == "__main__":
    main()
