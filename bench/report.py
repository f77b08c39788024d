"""The README's performance tables, as Markdown, from one `make bench` results file.

    .venv/bin/python bench/report.py [bench/results.json]

Prints the issue-24 tables (end to end, CPU per referral, sustained capacity, backlog, the
consumers against their targets) so the figures in the README are copied from a run, not typed.
"""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def end_to_end(rows: list[Row]) -> str:
    return _table(
        [
            "layout",
            "database",
            "rate /s",
            "achieved /s",
            "late",
            "post p50 / p99",
            "inbox p50",
            "p95",
            "p99",
            "CPU per referral",
            "RSS idle → loaded",
            "healthy after",
        ],
        [
            [
                r["layout"],
                _db(r["database"]),
                _n(r["rate"]),
                _n(r["achieved_rate"], 1),
                _n(r["late_sends"]),
                f"{_n(r['post_p50_ms'])} / {_n(r['post_p99_ms'])} ms",
                f"{_n(r['p50_ms'])} ms",
                f"{_n(r['p95_ms'])} ms",
                f"{_n(r['p99_ms'])} ms",
                f"{_n(r['cpu_ms_per_referral'], 1)} ms",
                f"{_n(r['idle_rss_mb'])} → {_n(r['loaded_rss_mb'])} MB",
                f"{_n(r['healthy_after_s'], 1)} s",
            ]
            for r in rows
        ],
    )


def cpu_by_process(rows: list[Row]) -> str:
    rows = [r for r in rows if r.get("cpu_ms_per_referral_by_process")]
    names = sorted({n for r in rows for n in r["cpu_ms_per_referral_by_process"]}, key=_order)
    return _table(
        ["layout", "database", "rate /s", *names, "all"],
        [
            [
                r["layout"],
                _db(r["database"]),
                _n(r["rate"]),
                *(f"{_n(r['cpu_ms_per_referral_by_process'].get(n), 1)}" for n in names),
                f"{_n(r['cpu_ms_per_referral'], 1)} ms",
            ]
            for r in rows
        ],
    )


def _order(name: str) -> tuple[int, str]:
    # The embedded process, the services in pipeline order, then the broker.
    known = ["nrm up", "identity", "intake", "router", "notify", "audit", "insights", "tansu"]
    return (known.index(name) if name in known else len(known), name)


def cpu(rows: list[Row]) -> str:
    return _table(
        ["database", "rate /s", "achieved /s", "referrals", "stack CPU", "per referral"],
        [
            [
                _db(r["database"]),
                _n(r["rate"]),
                _n(r["achieved_rate"], 1),
                _n(r["accepted"]),
                f"{_n(r['stack_cpu_s'], 1)} s",
                f"{_n(r['cpu_ms_per_referral'], 1)} ms",
            ]
            for r in rows
        ],
    )


def capacity(rows: list[Row]) -> str:
    return _table(
        [
            "database",
            "rate /s",
            "achieved /s",
            "post p50 / p99",
            "inbox p50 / p99",
            "arrived",
            "CPU per referral",
            "passed",
        ],
        [
            [
                _db(c["database"]),
                _n(s["rate"]),
                _n(s["achieved_rate"], 1),
                f"{_n(s['post_p50_ms'])} / {_n(s['post_p99_ms'])} ms",
                f"{_n(s['p50_ms'])} / {_n(s['p99_ms'])} ms",
                _n(s["arrived"]),
                f"{_n(s['cpu_ms_per_referral'], 1)} ms",
                "yes" if s["passed"] else "**no**",
            ]
            for c in rows
            for s in c["steps"]
        ],
    )


def backlog(rows: list[Row]) -> str:
    return _table(
        [
            "layout",
            "database",
            "referrals",
            "accepted at",
            "healthy after",
            "drained after",
            "drained at",
        ],
        [
            [
                r["layout"],
                _db(r["database"]),
                _n(r["referrals"]),
                f"{_n(r['accepted_per_s'])}/s",
                f"{_n(r['healthy_after_s'], 1)} s",
                f"{_n(r['drained_after_s'], 1)} s",
                f"{_n(r['drained_per_s'])}/s",
            ]
            for r in rows
        ],
    )


def consumers(rows: list[Row]) -> str:
    return _table(
        ["measure", "database", "batched", "a transaction per event", "ratio", "target"],
        [
            [
                r["measure"],
                _db(r["database"]),
                f"{_n(r['batched_per_s'])}/s",
                f"{_n(r['per_event_tx_per_s'])}/s",
                f"{_n(r['ratio'], 1)}\N{MULTIPLICATION SIGN}",
                f"{_n(r['target_per_s'])}/s" + ("" if r["met"] else " (**missed**)"),
            ]
            for r in rows
        ],
    )


def _db(name: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(name, name)


SECTIONS: dict[str, tuple[str, Callable[[list[Row]], str]]] = {
    "end_to_end": ("End to end", end_to_end),
    "cpu": ("Stack CPU per referral (embedded)", cpu),
    "capacity": ("Sustained capacity (embedded), by step", capacity),
    "backlog": ("Backlog drained", backlog),
    "consumers": ("Consumers against their targets", consumers),
}


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results.json")
    if not path.exists():
        sys.exit(f"{path}: no such results file (`make bench` writes bench/results.json)")
    results = json.loads(path.read_text())
    machine = results.get("machine", {})
    print(
        f"<!-- {path}: {machine.get('when')}, {machine.get('cpus')} CPUs, load average "
        f"{machine.get('load_average')} → {machine.get('load_average_end')} -->"
    )
    for key, (title, render) in SECTIONS.items():
        if results.get(key):
            print(f"\n{title}:\n\n{render(results[key])}")
        if key == "end_to_end" and any(
            r.get("cpu_ms_per_referral_by_process") for r in results.get(key, [])
        ):
            title = "CPU per referral by process, ms (end to end)"
            print(f"\n{title}:\n\n{cpu_by_process(results[key])}")


if __name__ == "__main__":
    main()
