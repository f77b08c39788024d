"""SQLite write transactions: who gets the write lock first, and waiting for another process."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import (
    create_engine,
    session_factory,
    sqlite_writers_waiting,
    transaction,
)
from tests.support import Database, wait_for


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/writes.db")
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE item (name TEXT)")
    yield engine
    await engine.dispose()


async def test_a_request_path_writer_goes_before_queued_background_writers(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    order: list[str] = []
    release = asyncio.Event()

    async def write(name: str, *, background: bool) -> None:
        async with transaction(sessions, background=background) as session:
            conn = await session.connection()
            await conn.execute(text("INSERT INTO item VALUES (:name)"), {"name": name})
            order.append(name)
            if name == "batch-0":
                await release.wait()

    async def started(name: str, *, background: bool, queued: int) -> asyncio.Task[None]:
        """A writer, once it holds the lock or waits for it behind `queued` - 1 others."""
        task = asyncio.create_task(write(name, background=background))

        async def waiting() -> bool:
            return order == [name] if not queued else sqlite_writers_waiting(engine) == queued

        await wait_for(waiting, timeout=10)
        return task

    tasks = [
        await started("batch-0", background=True, queued=0),
        await started("batch-1", background=True, queued=1),
        await started("batch-2", background=True, queued=2),
        await started("request", background=False, queued=3),
    ]
    release.set()
    await asyncio.gather(*tasks)

    assert order == ["batch-0", "request", "batch-1", "batch-2"]
    assert await _names(engine) == order


async def test_a_writer_waits_for_another_process_without_holding_up_the_loop(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Another connection (as another process would) holds the write lock: the transaction
    waits for it off the event loop, which goes on running, then commits."""
    other = sqlite3.connect(tmp_path / "writes.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO item VALUES ('other')")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def write() -> None:
        async with transaction(session_factory(engine)) as session:
            await (await session.connection()).execute(text("INSERT INTO item VALUES ('ours')"))

    ticker = asyncio.create_task(tick())
    writer = asyncio.create_task(write())
    try:
        start = ticks

        async def ticked() -> bool:
            return ticks >= start + 20

        await wait_for(ticked, timeout=10)
        assert not writer.done()
        other.execute("COMMIT")
        await asyncio.wait_for(writer, timeout=30)
    finally:
        ticker.cancel()
        other.close()
    assert await _names(engine) == ["other", "ours"]


async def _names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT name FROM item ORDER BY rowid"))).scalars())


async def test_a_failed_statement_names_no_bound_value(db: Database) -> None:
    """Database errors reach the logs with their tracebacks; the values bound to the failed
    statement (a victim's facts, sealed fields) must not be in the message."""
    canary = "CANARY-Aigerim-Nurlanovna"
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE hide_params (id INTEGER PRIMARY KEY, v TEXT)"))
        await conn.execute(text("INSERT INTO hide_params VALUES (1, 'x')"))
    with pytest.raises(IntegrityError) as raised:
        async with db.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO hide_params VALUES (:id, :v)"), {"id": 1, "v": canary}
            )
    assert canary not in str(raised.value)
    assert "hidden due to hide_parameters=True" in str(raised.value)
