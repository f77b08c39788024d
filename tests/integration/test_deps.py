"""The session dependencies: a WriteSession commits before the response is sent and rolls back
when the endpoint raises; typed state refuses a wrongly wired app."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import col, select

from services.common.app import create_app
from services.common.deps import ReadSession, Runtime, WriteSession
from services.common.errors import NotFound
from services.common.runtime import ServiceRuntime
from services.common.settings import Settings
from tests.support import Database, Effect

router = APIRouter()


@router.post("/effects/{key}", status_code=201)
async def add(key: str, session: WriteSession) -> dict[str, str]:
    session.add(Effect(event_id=f"e-{key}", key=key, seq=1))
    return {"key": key}


@router.post("/effects/{key}/refused")
async def add_then_refuse(key: str, session: WriteSession) -> None:
    session.add(Effect(event_id=f"e-{key}", key=key, seq=1))
    await session.flush()
    raise NotFound("No such thing.")


@router.post("/effects/{key}/clash", status_code=201)
async def add_twice(key: str, session: WriteSession) -> dict[str, str]:
    # Flushed only at the commit, where the second row's id clashes with the first.
    session.add(Effect(id=1, event_id=f"e-{key}", key=key, seq=1))
    session.add(Effect(id=1, event_id=f"e-{key}-again", key=key, seq=2))
    return {"key": key}


@router.get("/effects")
async def count(session: ReadSession) -> dict[str, int]:
    total = (await session.exec(select(func.count(col(Effect.id))))).one()
    return {"count": int(total)}


@router.get("/runtime")
async def runtime_service(runtime: Runtime) -> dict[str, str]:
    return {"service": runtime.service}


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="t", service="t", settings=Settings(), routers=[router])
    app.state.runtime = ServiceRuntime(
        service="t", engine=db.engine, bootstrap="127.0.0.1:1", metadata=[]
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_a_write_session_commits_what_the_endpoint_did(client: httpx.AsyncClient) -> None:
    r = await client.post("/effects/a")
    assert r.status_code == 201
    assert (await client.get("/effects")).json() == {"count": 1}


async def test_an_endpoint_that_raises_leaves_nothing_and_gets_its_error(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/effects/b/refused")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert (await client.get("/effects")).json() == {"count": 0}


async def test_a_failed_commit_is_an_error_not_a_success(client: httpx.AsyncClient) -> None:
    # The transaction commits before the response is sent: the client never hears 201 for it.
    r = await client.post("/effects/c/clash")
    assert r.status_code == 500
    assert (await client.get("/effects")).json() == {"count": 0}


async def test_typed_state_is_checked(client: httpx.AsyncClient) -> None:
    assert (await client.get("/runtime")).json() == {"service": "t"}
    app = create_app(title="t", service="t", settings=Settings(), routers=[router])
    app.state.runtime = "not a runtime"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/runtime")
    assert r.status_code == 500
