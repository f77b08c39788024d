"""The app factory: problem+json everywhere, health, readiness, metrics."""

from typing import Annotated

import httpx
from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from services.common.app import create_app
from services.common.errors import NotFound
from services.common.settings import Settings


class Item(BaseModel):
    name: Annotated[str, Field(min_length=1)]
    count: int


router = APIRouter()


@router.post("/items")
async def create_item(item: Annotated[Item, Body()]) -> Item:
    return item


@router.get("/items/{item_id}")
async def get_item(item_id: str) -> Item:
    raise NotFound("No such item.")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internal detail")


async def _failing_check() -> None:
    raise ConnectionRefusedError("db down")


async def _ok_check() -> None:
    return None


def client(*checks: tuple[str, object]) -> httpx.AsyncClient:
    app = create_app(title="t", service="t", settings=Settings(), routers=[router], checks=checks)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_validation_errors_are_problem_json_with_field_paths() -> None:
    async with client() as c:
        r = await c.post("/items", json={"name": "", "count": "many", "secret": "x"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 422 and body["title"] == "Unprocessable Content"
    assert {e["path"] for e in body["errors"]} >= {"name", "count"}


async def test_domain_errors_and_unknown_routes_are_problem_json() -> None:
    async with client() as c:
        r = await c.get("/items/42")
        unknown = await c.get("/nowhere")
        bad_json = await c.post(
            "/items", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert (r.status_code, r.json()["detail"]) == (404, "No such item.")
    assert r.headers["content-type"] == "application/problem+json"
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert bad_json.status_code == 422


async def test_unexpected_errors_leak_nothing() -> None:
    async with client() as c:
        r = await c.get("/boom")
    assert r.status_code == 500
    assert "secret" not in r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_health_readiness_and_metrics() -> None:
    async with client(("db", _ok_check)) as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/readyz")).json() == {"status": "ready", "failed": {}}
        await c.get("/items/1")
        metrics = (await c.get("/metrics")).text
    assert 'nrm_http_requests_total{method="GET",route="/items/{item_id}",status="404"}' in metrics
    async with client(("db", _ok_check), ("broker", _failing_check)) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failed"] == {"broker": "ConnectionRefusedError"}


def test_a_timestamp_whose_offset_leaves_the_calendar_is_its_end() -> None:
    """Valid RFC 3339 at year 1 or 9999 with an offset has no UTC time: the earliest or the
    latest there is (Schemathesis found a 500 in intake's `since` before this)."""
    from datetime import UTC, datetime

    from pydantic import TypeAdapter

    from services.common.params import Timestamp

    parse = TypeAdapter(Timestamp).validate_python
    assert parse("0001-01-01T00:00:00.0+01:01") == datetime(1, 1, 1, tzinfo=UTC)
    assert parse("9999-12-31T23:59:59-01:00") == datetime.max.replace(tzinfo=UTC)
    assert parse("2026-11-20T12:00:00+05:00") == datetime(2026, 11, 20, 7, tzinfo=UTC)
