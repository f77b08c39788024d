"""CPU an idle `nrm up` spends, by consumer fetch wait (Linux: reads /proc).

    .venv/bin/python bench/idle.py [--seconds 30] [--waits 10,100,500]

For each `NRM_KAFKA_FETCH_MAX_WAIT_MS`: start the embedded stack (SQLite, in-memory broker),
wait until healthy and 10 s more, then sum the CPU time of the stack's process tree over
`--seconds` with nothing submitted. Prints one line per wait: percent of one core.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.common.broker import free_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """The process and its descendants (children files under /proc)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            children = (
                (task / "children").read_text().split() if (task / "children").exists() else []
            )
            todo.extend(int(c) for c in children)
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def idle_share(wait_ms: int, seconds: float) -> float:
    data = tempfile.mkdtemp(prefix="nrm-idle-")
    port = free_port()
    env = {**os.environ, "NRM_DATA_DIR": data, "NRM_PORT": str(port)}
    env["NRM_KAFKA_FETCH_MAX_WAIT_MS"] = str(wait_ms)
    env.pop("NRM_KAFKA_BOOTSTRAP", None)
    with (Path(data) / "stack.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit(f"not healthy; see {data}/stack.log")
        time.sleep(10)  # the start's own work done
        pids = tree(proc.pid)
        before = cpu_seconds(pids)
        time.sleep(seconds)
        return (cpu_seconds(pids) - before) / seconds * 100
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--waits", default="10,100,500")
    args = parser.parse_args()
    print("fetch_max_wait_ms | idle CPU (% of one core)")
    for wait in (int(w) for w in args.waits.split(",")):
        print(f"{wait} | {idle_share(wait, args.seconds):.1f}")


if __name__ == "__main__":
    main()
