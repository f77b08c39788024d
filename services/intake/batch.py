"""Group commit for submissions: requests that arrive together share one transaction.

Each commit (and, on SQLite, each turn of the single write lock) costs far more than the rows
it writes, so a writer task takes everything queued, writes it in one transaction with
multi-row inserts, and answers each request. If a batch fails, its submissions are retried one
by one, so one bad submission fails only its own request.
"""

import asyncio
import contextlib
import logging

from services.common.crypto import Vault
from services.common.db import SessionFactory, transaction
from services.common.errors import Conflict
from services.intake.service import Submission, Submitted, submit_referrals

log = logging.getLogger(__name__)

Outcome = Submitted | Conflict


class SubmissionQueue:
    def __init__(self, *, sessions: SessionFactory, vault: Vault, max_batch: int = 256) -> None:
        self._sessions = sessions
        self._vault = vault
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Submission, asyncio.Future[Outcome]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="intake:submissions")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, submission: Submission) -> Submitted:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((submission, future))
        outcome = await future
        if isinstance(outcome, Conflict):
            raise outcome
        return outcome

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[tuple[Submission, asyncio.Future[Outcome]]]) -> None:
        try:
            async with transaction(self._sessions) as session:
                outcomes = await submit_referrals(
                    session, submissions=[s for s, _ in batch], vault=self._vault
                )
        except Exception as exc:
            if len(batch) == 1:
                future = batch[0][1]
                if not future.done():
                    future.set_exception(exc)
                return
            log.warning("submission batch failed, retrying one by one", extra={"size": len(batch)})
            for item in batch:
                await self._write([item])
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():  # the client may have gone away
                future.set_result(outcome)
