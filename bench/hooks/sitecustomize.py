"""Loaded by `bench/tasks.py` into the stack it starts (on PYTHONPATH; inert otherwise).

With NRM_BENCH_TASK_CPU set to a file path: the stack runs on the standard asyncio loop rather
than uvloop, whose callbacks cannot be wrapped, and every callback the loop runs is timed with
the thread's CPU clock, by the task it steps. SIGUSR1 starts counting, SIGUSR2 writes the
counts to that file as JSON."""

import os
import sys

if os.environ.get("NRM_BENCH_TASK_CPU"):
    sys.modules["uvloop"] = None  # type: ignore[assignment]  # uvicorn's "auto" falls back
    import asyncio
    import json
    import signal
    import time
    from pathlib import Path
    from typing import Any

    _seconds: dict[str, float] = {}
    _steps: dict[str, int] = {}
    _state: dict[str, Any] = {"on": False}
    _run = asyncio.events.Handle._run

    def _label(handle: asyncio.Handle) -> str:
        task = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
        if isinstance(task, asyncio.Task):
            coro = task.get_coro()
            name = getattr(coro, "__qualname__", type(coro).__name__)
            return name if task.get_name().startswith("Task-") else f"{name} [{task.get_name()}]"
        callback = handle._callback  # type: ignore[attr-defined]
        return str(getattr(callback, "__qualname__", type(callback).__name__))

    def _timed(self: asyncio.Handle) -> None:
        if not _state["on"]:
            return _run(self)
        started = time.thread_time()
        try:
            return _run(self)
        finally:
            label = _label(self)
            _seconds[label] = _seconds.get(label, 0.0) + time.thread_time() - started
            _steps[label] = _steps.get(label, 0) + 1

    asyncio.events.Handle._run = _timed  # type: ignore[method-assign]

    def _start(*_: Any) -> None:
        _seconds.clear()
        _steps.clear()
        _state.update(on=True, thread=time.thread_time(), process=time.process_time())

    def _stop(*_: Any) -> None:
        _state["on"] = False
        report = {
            "loop_thread_s": time.thread_time() - _state["thread"],
            "process_s": time.process_time() - _state["process"],
            "tasks": [
                {"task": label, "seconds": seconds, "steps": _steps[label]}
                for label, seconds in sorted(_seconds.items(), key=lambda kv: -kv[1])
            ],
        }
        Path(os.environ["NRM_BENCH_TASK_CPU"]).write_text(json.dumps(report))

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
