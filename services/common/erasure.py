"""The erasure ledger: which referrals were erased, kept outside the service's database.

Crypto-shredding destroys a referral's keys in the database, but a backup taken before the
erasure still holds them. The ledger is appended (and synced to disk) before the database
transaction that shreds, and each service replays it on start, so a restored backup is
shredded again before it serves anything. It holds ids, basis codes and times only.
"""

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from services.common.bus import AfterApply
from services.common.db import SessionFactory, is_sqlite, transaction, truncate_wal

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Erasure:
    referral_id: str
    basis: str
    erased_at: datetime
    recorded_at: datetime  # this service's wall clock when it wrote the entry


class ErasureLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._times: dict[str, datetime] = {}

    def record(self, *, referral_id: str, basis: str, erased_at: datetime) -> None:
        """Append one erasure and sync it to disk (before the shredding transaction commits:
        a crash in between leaves an entry the next start carries out)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = orjson.dumps(
            {
                "referral_id": referral_id,
                "basis": basis,
                "erased_at": erased_at.isoformat(),
                "recorded_at": datetime.now(UTC).isoformat(),
            }
        )
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # after a line torn by a crash, start a fresh one
            os.write(fd, line + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> list[Erasure]:
        """Every erasure recorded, oldest first (a line torn by a crash is skipped)."""
        if not self.path.is_file():
            return []
        found: list[Erasure] = []
        for raw in self.path.read_bytes().splitlines():
            try:
                item = orjson.loads(raw)
                erased_at = datetime.fromisoformat(item["erased_at"])
                recorded = item.get("recorded_at")
                found.append(
                    Erasure(
                        referral_id=str(item["referral_id"]),
                        basis=str(item["basis"]),
                        erased_at=erased_at,
                        recorded_at=datetime.fromisoformat(recorded) if recorded else erased_at,
                    )
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return found

    def recorded_at(self) -> dict[str, datetime]:
        """When this service recorded each erasure (its own clock: what it wrote before then
        predates the erasure), read again only when the file changed (the outbox relay asks
        after every delivery round)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._times = {e.referral_id: e.recorded_at for e in self.entries()}
            self._stamp = stamp
        return self._times

    def __contains__(self, referral_id: object) -> bool:
        return any(e.referral_id == referral_id for e in self.entries())


ERASED = "referral.erased"


def after_erasure(engine: AsyncEngine) -> AfterApply:
    """A consumer's `after_apply`: once a `referral.erased` is committed, the SQLite
    write-ahead log that still holds the pages from before is folded in and truncated."""

    async def scrub(event: CloudEvent) -> None:
        if event.type != ERASED:
            return
        try:
            if is_sqlite(engine) and not await truncate_wal(engine):
                log.warning("write-ahead log not truncated after an erasure (a reader was busy)")
        except Exception as exc:  # the erasure itself is committed; the next one retries
            log.warning("write-ahead log not truncated after an erasure", extra={"error": str(exc)})

    return scrub


async def replay_ledger(
    ledger: ErasureLedger,
    sessions: SessionFactory,
    apply: Callable[[AsyncSession, Erasure], Awaitable[object]],
) -> int:
    """On start, before consuming or serving: apply every recorded erasure again (`apply` is
    idempotent), so a restored backup keeps nothing an erasure removed. Returns how many."""
    entries = ledger.entries()
    if not entries:
        return 0
    async with transaction(sessions) as session:
        for entry in entries:
            await apply(session, entry)
    engine = sessions.kw.get("bind")
    if engine is not None and is_sqlite(engine):
        await truncate_wal(engine)
    return len(entries)


def replay_step(
    ledger: ErasureLedger, sessions: SessionFactory, apply_erased: Callable[..., Awaitable[object]]
) -> Callable[[object], Awaitable[None]]:
    """A start-up step (services.common.runtime.Service) of a service that keeps a referral's
    traces: `replay_ledger` with its `apply_erased(session, referral_id=...)`, so a restored
    backup is erased again before anything is consumed or served."""

    async def step(_: object) -> None:
        await replay_ledger(
            ledger, sessions, lambda session, e: apply_erased(session, referral_id=e.referral_id)
        )

    return step
