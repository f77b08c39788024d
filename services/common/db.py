"""Async database access: one database per service, SQLite (WAL) or PostgreSQL (asyncpg)."""

import asyncio
import functools
import os
import sqlite3
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import aiosqlite
import orjson
from sqlalchemy import Engine, MetaData, Table, event, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]
_WRITE_OPTION = "nrm_sqlite_write"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns through orjson: the stdlib encoder was a tenth of a group commit's CPU.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def create_engine(
    url: str,
    *,
    search_path: str | None = None,
    echo: bool = False,
    pool_size: int = 10,
    max_overflow: int = 10,
) -> AsyncEngine:
    """An engine tuned for the dialect.

    SQLite: WAL so readers never block the writer, a busy timeout, and `BEGIN IMMEDIATE` for
    `transaction()` so a writer takes the lock up front instead of failing when it upgrades
    from a read. Plain `sessions()` use is for reads.
    PostgreSQL: no pre-ping (a round trip per checkout); a dropped connection fails one
    transaction, is discarded by the pool, and callers retry. `search_path` isolates tests.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            private_database_file(Path(path))
        sqlite_args: dict[str, Any] = {
            "timeout": _BUSY_TIMEOUT_MS / 1000,
            # Statements of a write transaction run on the event loop's thread (see
            # `_SqliteConnection`); the connection is never used by two threads at once.
            "check_same_thread": False,
            "async_creator_fn": _SqliteConnection.connect,
        }
        engine = create_async_engine(
            url, echo=echo, connect_args=sqlite_args, hide_parameters=True, **_JSON_CODEC
        )
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if search_path:
        connect_args["server_settings"] = {"search_path": search_path}
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args=connect_args,
        # A failed statement's message (logged with its traceback) names no bound value: the
        # values may be a victim's facts or sealed fields.
        hide_parameters=True,
        **_JSON_CODEC,
    )


def private_database_file(path: Path) -> None:
    """Create a SQLite file readable by its owner only (0600), in a folder created 0700.

    SQLite gives the `-wal` and `-shm` files it creates the mode of the database file, so they
    are private too; ones left by an older version are tightened here."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            file.chmod(0o600)


_BUSY_TIMEOUT_MS = 30_000


class _SqliteConnection(aiosqlite.Connection):
    """aiosqlite's connection, except inside a write transaction (`transaction()`), whose
    statements run on the event loop's thread instead of the connection's worker thread.

    aiosqlite hands every call to its thread and back: a statement costs three or four such
    hops (cursor, execute, fetch, close), each waiting for a turn of the event loop. In the
    embedded stack, where one loop serves every service, a consumer's transaction of a few
    dozen statements held a database's single write lock for ~100 ms at 25 referrals/s, and
    intake's submissions queued behind it (POST p50 130-220 ms on SQLite). Once `BEGIN
    IMMEDIATE` holds the write lock, nothing in the transaction waits for another writer (WAL
    readers never block), so its statements are short CPU work: run inline they take
    microseconds, and the lock is released as soon as the work is done. The commit, which may
    checkpoint the WAL to disk, stays on the worker thread, as do reads outside a write
    transaction and a `BEGIN IMMEDIATE` that has to wait for another process.
    """

    inline = False

    @classmethod
    def connect(cls, database: str, **kwargs: Any) -> "_SqliteConnection":
        connection = cls(partial(sqlite3.connect, database, **kwargs), iter_chunk_size=64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
        return connection

    def begin_immediate(self) -> bool:
        """Take the write lock at once, on the calling thread; False, with nothing begun, if
        another connection holds it (the caller then waits for it on the worker thread)."""
        conn = self._conn
        conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        self.inline = True
        return True

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.inline and self._connection is not None:
            return fn(*args, **kwargs)
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    async def commit(self) -> None:
        self.inline = False
        await super().commit()

    async def rollback(self) -> None:
        self.inline = False
        if self._connection is not None and not self._connection.in_transaction:
            return  # nothing to undo (the pool's reset after a commit): no hop to the thread
        await super().rollback()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Autocommit at the driver level; SQLAlchemy's "begin" hook below opens transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}",
            "PRAGMA foreign_keys=ON",
            # Deleted and overwritten content is zeroed, not left in free space: what an
            # erasure removes cannot be read back from the file (`truncate_wal` does the log).
            "PRAGMA secure_delete=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers (see `transaction`) take the write lock up front; readers stay deferred, which
        # in WAL mode never blocks and is never blocked.
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        driver = conn.connection.driver_connection
        if not write or not isinstance(driver, _SqliteConnection):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
        elif not driver.begin_immediate():
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # another process writes: wait off the loop
            driver.inline = True


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


class _WriteLock:
    """SQLite's one writer, queued in process: cheaper and fairer than SQLite's busy handler,
    which sleeps in growing steps while another connection of this process holds the lock.

    Writers on a request's path go first: a submission waits for the transaction in progress,
    not for every consumer batch and outbox round queued before it. Background writers
    (consumers, the outbox relay) still get a turn after `_FOREGROUND_RUN` foreground writers
    in a row, so a steady stream of requests cannot starve them.
    """

    _FOREGROUND_RUN = 4

    def __init__(self) -> None:
        self._held = False
        self._queues: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),  # foreground
            deque(),  # background
        )
        self._run = 0

    async def acquire(self, *, background: bool) -> None:
        if not self._held and not any(self._queues):
            self._held = True
            return
        waiter = asyncio.get_running_loop().create_future()
        queue = self._queues[background]
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted as we were cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._queues)

    def release(self) -> None:
        foreground, background = self._queues
        if foreground and not (background and self._run >= self._FOREGROUND_RUN):
            self._run += 1
            foreground.popleft().set_result(None)
        elif background:
            self._run = 0
            background.popleft().set_result(None)
        else:
            self._run = 0
            self._held = False


_sqlite_writers: "weakref.WeakKeyDictionary[Engine, _WriteLock]" = weakref.WeakKeyDictionary()


def _write_lock(engine: AsyncEngine) -> _WriteLock:
    lock = _sqlite_writers.get(engine.sync_engine)
    if lock is None:
        lock = _sqlite_writers[engine.sync_engine] = _WriteLock()
    return lock


def sqlite_writers_waiting(engine: AsyncEngine) -> int:
    """Writers queued for this SQLite database's write lock (in this process)."""
    lock = _sqlite_writers.get(engine.sync_engine)
    return lock.waiting if lock is not None else 0


@asynccontextmanager
async def transaction(
    sessions: SessionFactory, *, background: bool = False
) -> AsyncIterator[AsyncSession]:
    """A session inside one write transaction: committed on success, rolled back on error.

    `background`: the writer is not on a request's path (consumers, the outbox relay); on
    SQLite it lets writers that are go first. For reads, use the session factory directly:
    `async with sessions() as session`."""
    engine: AsyncEngine | None = sessions.kw.get("bind")
    if engine is not None and is_sqlite(engine):
        lock = _write_lock(engine)
        await lock.acquire(background=background)
        try:
            async with sessions() as session, session.begin():
                await session.connection(execution_options={_WRITE_OPTION: True})
                yield session
        finally:
            lock.release()
        return
    async with sessions() as session, session.begin():
        yield session


async def truncate_wal(engine: AsyncEngine, *, background: bool = False) -> bool:
    """SQLite: copy the write-ahead log into the database file and truncate the log to nothing,
    so page images written before an erasure do not linger in the `-wal` file (with
    `secure_delete` the database file keeps nothing deleted). True when done; False when a
    reader kept it from finishing (the next call does it), and for other databases.
    `background` as for `transaction`."""
    if not is_sqlite(engine):
        return False

    def run(conn: Any) -> bool:
        # On the driver's connection, outside any transaction (a checkpoint cannot run in one).
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = cursor.fetchone()
        finally:
            cursor.close()
        return bool(row) and row[0] == 0

    lock = _write_lock(engine)
    await lock.acquire(background=background)
    try:
        async with engine.connect() as conn:
            return bool(await conn.run_sync(run))
    finally:
        lock.release()


async def create_all(engine: AsyncEngine, *metadata: MetaData) -> None:
    """Create missing tables (tests and the embedded stack; production uses Alembic)."""
    async with engine.begin() as conn:
        for md in metadata:
            await conn.run_sync(md.create_all)


def insert_ignore(dialect: str, table: Any) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for the dialect ("sqlite" or "postgresql")."""
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    return pg_insert(table).on_conflict_do_nothing()


async def insert_many(
    session: AsyncSession, model: type[SQLModel], rows: list[dict[str, Any]]
) -> None:
    """Insert plain dict rows with one executemany on the model's table, in the caller's
    transaction: no ORM objects and one cached statement, which for hundreds of rows costs a
    fraction of `session.add` or a multi-VALUES statement compiled per batch."""
    if rows:
        table: Table = model.__table__  # type: ignore[attr-defined]
        await (await session.connection()).execute(_insert(table), rows)


@functools.cache
def _insert(table: Table) -> Any:
    # One statement object per table: its cache key is computed once, not per batch.
    return insert(table)


class Staged(Protocol):
    """Rows a transaction's handlers stage, written together by `write` (see `staged`)."""

    def write(self, session: Session) -> None: ...


_STAGED = "nrm_staged"
S = TypeVar("S", bound=Staged)


def staged(session: AsyncSession, kind: type[S]) -> S:
    """This transaction's `kind` of staged writes, made on first use.

    A consumer batch applies many events in one transaction; what their handlers write on the
    hot path is staged here and written by `kind.write` with one multi-row statement per table,
    just before the transaction commits (or earlier, by `write_staged`), instead of a few
    statements per event. Dropped with the transaction if it rolls back. Code that reads or
    changes what may be staged calls `write_staged` first."""
    pending: dict[type[Staged], Staged] = session.info.setdefault(_STAGED, {})
    found = pending.get(kind)
    if found is None:
        found = pending[kind] = kind()
    return cast(S, found)


async def write_staged(session: AsyncSession) -> None:
    """Write what this transaction has staged, now (before reading the tables it goes to)."""
    if session.info.get(_STAGED):
        await session.run_sync(_write_staged)


def _write_staged(session: Session) -> None:
    for pending in session.info.get(_STAGED, {}).values():
        pending.write(session)


@event.listens_for(Session, "before_commit")
def _write_staged_before_commit(session: Session) -> None:
    _write_staged(session)


@event.listens_for(Session, "after_transaction_end")
def _drop_staged(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed or rolled back: nothing staged survives it
        session.info.pop(_STAGED, None)


class CommitSignal:
    """Wakes in-process waiters when a transaction that `mark`ed it commits (not before, and not
    on rollback): the outbox relay waits on one, notify's live stream on another."""

    def __init__(self, name: str) -> None:
        self._flag = f"nrm_signal_{name}"
        # Weak: a disposed engine takes its waiters with it.
        self._waiters: weakref.WeakKeyDictionary[Engine, set[asyncio.Event]] = (
            weakref.WeakKeyDictionary()
        )
        _signals.append(self)

    def mark(self, session: AsyncSession | Session) -> bool:
        """Mark the session's transaction; True the first time in that transaction."""
        if session.info.get(self._flag):
            return False
        session.info[self._flag] = True
        return True

    def subscribe(self, engine: AsyncEngine, waiter: asyncio.Event) -> None:
        self._waiters.setdefault(engine.sync_engine, set()).add(waiter)

    def unsubscribe(self, engine: AsyncEngine, waiter: asyncio.Event) -> None:
        self._waiters.get(engine.sync_engine, set()).discard(waiter)

    def _committed(self, session: Session) -> None:
        if not session.info.pop(self._flag, False):
            return
        bind = session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        for waiter in self._waiters.get(engine, ()):
            waiter.set()

    def _rolled_back(self, session: Session) -> None:
        session.info.pop(self._flag, None)


_signals: list[CommitSignal] = []


@event.listens_for(Session, "after_commit")
def _fire_signals(session: Session) -> None:
    for signal in _signals:
        signal._committed(session)


@event.listens_for(Session, "after_rollback")
def _drop_signals(session: Session) -> None:
    for signal in _signals:
        signal._rolled_back(session)
