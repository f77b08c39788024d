"""Fixtures: a real broker for the session, and a real database per test (SQLite, PostgreSQL)."""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from sqlalchemy import text

from services.common.broker import EmbeddedBroker, free_port
from services.common.bus import create_producer, ensure_topics
from services.common.db import create_all, create_engine, session_factory
from services.common.models import runtime_metadata
from tests.support import SESSION_TIMEOUT_MS, Database, Mailbox, Receiver, test_metadata

PG_URL = os.environ.get("NRM_TEST_DATABASE_URL")
# Apps built from settings in tests get the short consumer-group session (see tests.support).
os.environ.setdefault("NRM_KAFKA_SESSION_TIMEOUT_MS", str(SESSION_TIMEOUT_MS))
# ...and fetches that wait 100 ms rather than 10 ms: an idle stack then polls the broker a tenth
# as often (26% of a core instead of 98%: bench/idle.py), which matters with several stacks
# alive on 2 cores; tests wait on conditions, so only the idle delay per hop changes.
os.environ.setdefault("NRM_KAFKA_FETCH_MAX_WAIT_MS", "100")
# ...and generate their master keys in the test's data folder, as `nrm up` does (production
# services insist on keys from a secret: tests/unit/test_crypto.py).
os.environ.setdefault("NRM_GENERATE_MASTER_KEYS", "true")
DATABASES = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Any:
    """Make `--dist loadgroup` group again: pytest-xdist 3.8 marks a test's group by assigning
    `item._nodeid`, which pytest 9 no longer reads, so every `xdist_group` was ignored (a
    module's tests, and its stack, spread over every worker). The suffix it meant to add."""
    result = yield
    if getattr(config.option, "loadgroup", False):
        from _pytest.nodeid import NodeId

        for item in items:
            names = {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
            if names and "@" not in item.nodeid:
                item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(sorted(names))}")
    return result


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One embedded Tansu broker, over TCP on loopback, for the whole session."""
    b = EmbeddedBroker()
    b.start_process()
    asyncio.run(b.wait_ready())
    asyncio.run(ensure_topics(b.bootstrap, partitions=3))
    yield b
    b.stop()


@pytest.fixture
async def own_broker() -> AsyncIterator[EmbeddedBroker]:
    """A broker of this test's own, for tests that freeze or break it."""
    async with EmbeddedBroker() as b:
        await ensure_topics(b.bootstrap, partitions=3)
        yield b


@pytest.fixture
async def topic(broker: EmbeddedBroker) -> str:
    """A fresh topic, so tests sharing the session broker never see each other's records."""
    name = f"test.{uuid.uuid4().hex[:12]}.v1"
    await ensure_topics(broker.bootstrap, partitions=3, names=[name])
    return name


@pytest.fixture
async def producer(broker: EmbeddedBroker) -> AsyncIterator[AIOKafkaProducer]:
    p = create_producer(broker.bootstrap)
    await p.start()
    yield p
    await p.stop()


@contextlib.asynccontextmanager
async def open_database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database of `kind`; PostgreSQL gets a schema of its own, dropped afterwards."""
    schema = None
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/service.db"
        engine = create_engine(url)
    else:
        assert PG_URL is not None
        url = PG_URL
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
        engine = create_engine(url, search_path=schema)
    try:
        yield Database(kind, url, engine, session_factory(engine), schema)
    finally:
        await engine.dispose()
        if schema is not None:
            admin = create_engine(url)
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


@pytest.fixture(params=DATABASES)
async def blank_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with open_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture(params=DATABASES)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with the runtime (outbox, processed events) and test tables."""
    async with open_database(request.param, tmp_path) as database:
        await create_all(database.engine, runtime_metadata, test_metadata)
        yield database


@pytest.fixture
def mailbox() -> Any:
    """An SMTP server (aiosmtpd) on loopback: (its Mailbox, its port)."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook endpoint, started by the test when it wants it up."""
    r = Receiver()
    yield r
    await r.stop()
