"""Shares of a py-spy recording by the package whose code was running (the sample's innermost
frame), for the README's "what limits it".

    py-spy record --nonblocking --threads -r 100 -d 15 -f raw -o spy.raw -p <pid>
    .venv/bin/python bench/spyshares.py spy.raw

Counts the main thread (the event loop) only; the driver's worker threads are reported as one
line. py-spy is not a dependency of the project: install it outside it.
"""

import re
import sys
from collections import Counter
from pathlib import Path


def package(frame: str) -> str:
    """`fn (path/to/file.py:12)` -> the package or the project's service that file is in."""
    if frame.startswith(("_SqliteConnection._execute ", "_SqliteConnection.begin_immediate ")):
        return "SQLite, statements run on the loop (services/common/db.py)"
    if frame.startswith("Runner.run (asyncio/runners.py"):
        return "the event loop's own native code (uvloop)"
    found = re.search(r"\(([^():]+)(?::\d+)?\)\s*$", frame)
    path = found.group(1) if found else frame
    if path.startswith("services/") or path.startswith("contracts/"):
        return "/".join(path.split("/")[:2]).removesuffix(".py")
    if path.startswith("<"):
        return "python (frozen)"
    top = path.split("/")[0]
    return top.removesuffix(".py") if "/" in path or path.endswith(".py") else path


def main() -> None:
    main_thread: Counter[str] = Counter()
    other = 0
    for line in Path(sys.argv[1]).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if frames[0].startswith("thread") and "MainThread" not in frames[0]:
            other += int(count)
            continue
        frames = frames[1:] if frames[0].startswith("thread") else frames
        main_thread[package(frames[-1]) if frames else "(no frame)"] += int(count)
    total = sum(main_thread.values())
    print(f"main thread: {total} samples; other threads: {other} samples\n")
    print("| package running (innermost frame) | share of the main thread's samples |")
    print("|---|---|")
    for name, n in main_thread.most_common(20):
        print(f"| {name} | {100 * n / total:.1f}% |")


if __name__ == "__main__":
    main()
