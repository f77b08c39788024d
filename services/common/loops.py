"""A background loop: run a step every so often, or sooner when woken, until stopped."""

import asyncio
import contextlib
import logging

from services.common.bus import describe_error

log = logging.getLogger(__name__)


class Loop:
    """A task that runs `tick` every `interval` seconds, or sooner when woken."""

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0  # completed rounds, for operators' metrics and tests

    async def tick(self) -> int:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        self.wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self.wake.clear()
            try:
                busy = await self.tick()
                self.ticks += 1
            except Exception as exc:
                log.warning(
                    "%s failed, will retry", self.name, extra={"error": describe_error(exc)}
                )
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.interval)
