"""Helpers shared by tests: a test-only effect table, event builders, condition waits."""

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import orjson
import uvicorn
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks.webhooks import Webhook as Verifier

from contracts.cloudevents import CloudEvent
from contracts.events import ReferralWithdrawn
from contracts.topics import topic_for_type
from services.common.broker import free_port
from services.common.bus import ConsumerRunner
from services.common.db import SessionFactory
from services.common.models import OutboxRecord
from services.stack import SERVICES

# Tansu forms a consumer group after half the session timeout: keep test groups quick.
SESSION_TIMEOUT_MS = 2000

test_registry = registry()
test_metadata = test_registry.metadata


class TestTable(SQLModel, registry=test_registry):
    pass


class Effect(TestTable, table=True):
    """One row per applied event: what a real service's handler would change."""

    __tablename__ = "test_effect"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64)
    key: str = Field(max_length=100)
    seq: int


@dataclass
class Database:
    kind: str
    url: str
    engine: AsyncEngine
    sessions: SessionFactory
    schema: str | None = None


def make_event(key: str, seq: int) -> CloudEvent:
    """A real catalogue event whose `reference` carries a per-key sequence number."""
    payload = ReferralWithdrawn(referral_id=key, reference=f"seq-{seq}", withdrawn_by="test-agency")
    return CloudEvent.new(source="test", payload=payload, subject=key, agency="test-agency")


async def record_effect(session: AsyncSession, event: CloudEvent) -> None:
    """Handler used by the bus tests: validates the payload and records one effect row."""
    payload = event.payload()
    assert isinstance(payload, ReferralWithdrawn)
    seq = int(payload.reference.removeprefix("seq-"))
    session.add(Effect(event_id=event.id, key=payload.referral_id, seq=seq))


async def effect_count(db: Database) -> int:
    async with db.sessions() as session:
        result = await session.exec(select(func.count()).select_from(Effect))
        return int(result.one())


async def effects(db: Database) -> list[Effect]:
    async with db.sessions() as session:
        return list(await session.exec(select(Effect).order_by(col(Effect.id))))


EXAMPLE_AGENCIES = {
    "mvd-ctu",
    "gp",
    "labour-insp",
    "child-rights",
    "anti-corruption",
    "ngo-north",
    "ngo-south",
    "nrm-coordinator",
}


async def outbox_payloads(db: Database, event_type: str) -> list[dict[str, Any]]:
    """Payloads of the events of `event_type` a service staged, oldest first."""
    async with db.sessions() as session:
        rows = await session.exec(
            select(OutboxRecord)
            .where(OutboxRecord.event_type == event_type)
            .order_by(col(OutboxRecord.id))
        )
        return [orjson.loads(r.value) for r in rows]


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.05
) -> None:
    """Poll `condition` until true; fail the test with a clear message after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if await condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def walk(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: dict[str, str],
    params: dict[str, Any],
    key: str,
) -> list[list[Any]]:
    """Every page of a cursor-paginated list, following `next_cursor` until it is null (20
    pages at most): each page's items' `key`, so a test states the pages literally."""
    pages: list[list[Any]] = []
    cursor: str | None = None
    while len(pages) < 20:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(path, params=query, headers=headers)
        assert r.status_code == 200, r.text
        pages.append([item[key] for item in r.json()["items"]])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError(f"{path}: more than 20 pages")


# Cursors to try on a list: a value outside the form (`%%%`), base64url of `not json`, `["x"]`
# (a list sorted by an id takes it) and `[5]` (a list sorted by a number takes it).
TRIED_CURSORS = ("%%%", "bm90IGpzb24", "WyJ4Il0", "WzVd")


async def cursor_answers(
    client: httpx.AsyncClient, path: str, *, headers: dict[str, str]
) -> dict[str, tuple[int, str, list[str]]]:
    """What `path` answers to each of TRIED_CURSORS: status, content type, field paths."""
    answers = {}
    for cursor in TRIED_CURSORS:
        r = await client.get(path, params={"cursor": cursor}, headers=headers)
        paths = [e["path"] for e in r.json().get("errors", [])] if r.status_code != 200 else []
        answers[cursor] = (r.status_code, r.headers["content-type"], paths)
    return answers


def children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (zombies count as gone)."""
    running = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(p)
    return running


async def answers(url: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    """Whether `url` answers 200 yet; fails at once if the process serving it has exited."""
    if proc.poll() is not None:
        raise AssertionError(f"the process serving {url} exited; see {log}")
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False


async def read_topic(
    bootstrap: str, topic: str, *, until: Callable[[list[Any]], bool], timeout: float
):
    """Read `topic` from the beginning (no group) until `until(records)` holds."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: condition not met within {timeout}s")
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records


async def dead_letter_from(bootstrap: str, topic: str) -> Any:
    """The one record dead-lettered from `topic` (waits for it)."""

    def ours(records: list[Any]) -> list[Any]:
        return [r for r in records if dict(r.headers).get("dlq_topic") == topic.encode()]

    records = await read_topic(
        bootstrap, "nrm.deadletter.v1", until=lambda rs: bool(ours(rs)), timeout=20
    )
    (dead,) = ours(records)
    return dead


def make_consumer(
    db: Database, bootstrap: str, topic: str, producer: Any, **overrides: Any
) -> ConsumerRunner:
    """A consumer of `topic` in group `group-<topic>` recording effects, as the bus tests use."""
    options: dict[str, Any] = {
        "name": f"group-{topic}",
        "topics": [topic],
        "handler": record_effect,
        "sessions": db.sessions,
        "bootstrap": bootstrap,
        "producer": producer,
        "session_timeout_ms": SESSION_TIMEOUT_MS,
    }
    return ConsumerRunner(**(options | overrides))


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app over real HTTP on a free loopback port (lifespan included); yields
    its base URL. For what an in-memory transport cannot show, like a live event stream."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: _started(server, task), timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # raise what stopped it
        raise AssertionError("server exited before it started")
    return server.started


async def publish_event(
    producer: Any,
    payload: Any,
    subject: str,
    *,
    source: str = "test",
    traceparent: str | None = None,
) -> CloudEvent:
    """Publish a catalogue event on its topic, as the service that owns it would."""
    event = CloudEvent.new(source=source, payload=payload, subject=subject, traceparent=traceparent)
    record = event.to_kafka()
    topic = topic_for_type(event.type).name
    await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
    return event


# Receivers at the edge of the world, started by the tests


@dataclass
class Receiver:
    """A webhook endpoint: records what it is sent; answers `status` (or is not listening)."""

    port: int = field(default_factory=free_port)
    status: int = 204
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/nrm"

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            self.received.append((dict(request.headers), await request.read()))
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/hooks/nrm", handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def unique(self, secret: str) -> dict[str, dict[str, Any]]:
        """Verified payloads by `webhook-id`: what a receiver that deduplicates keeps."""
        verifier = Verifier(secret)
        return {h["webhook-id"]: verifier.verify(body, h) for h, body in self.received}


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


def _admin_dsn(url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy URL (`postgresql+asyncpg://…` → `postgresql://…`)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_databases(url: str, names: list[str]) -> None:
    """Fresh PostgreSQL databases next to `url`'s (a service each, as in production)."""
    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        for name in names:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.contextmanager
def service_databases(url: str | None, prefix: str) -> Iterator[str | None]:
    """A fresh PostgreSQL database per service next to `url`'s, dropped afterwards; yields the
    `NRM_DATABASE_URL` for them (with `{service}`), or None when there is no `url`."""
    if url is None:
        yield None
        return
    prefix = f"{prefix}_{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_{s}" for s in SERVICES]
    asyncio.run(create_databases(url, names))
    try:
        yield url.rsplit("/", 1)[0] + f"/{prefix}_{{service}}"
    finally:
        asyncio.run(drop_databases(url, names))


async def drop_databases(url: str, names: list[str]) -> None:
    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def drop_connections(url: str, database: str) -> int:
    """Terminate every server connection to `database` (a database outage, as a service sees
    it); returns how many were dropped."""
    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return sum(1 for r in rows if r[0])


async def connection_count(url: str, database: str) -> int:
    """Server connections open to `database` now (other than this one)."""
    conn = await asyncpg.connect(_admin_dsn(url))
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return int(count)
