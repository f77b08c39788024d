"""The one cursor pagination (services.common.pagination): what a cursor looks like, and which
values are not cursors. The lists themselves are walked against real databases in the
services' integration tests (test_intake, test_notify, test_audit)."""

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from services.common.errors import install_error_handlers
from services.common.pagination import (
    InvalidCursor,
    Key,
    cursor_key,
    decode_cursor,
    encode_cursor,
)


def test_a_cursor_is_the_sort_key_as_json_in_unpadded_base64url() -> None:
    assert encode_cursor((5,)) == "WzVd"  # [5]
    assert (
        encode_cursor(("01a2280a-fbb5-716c-b08e-4e347d0a36f5",))
        == "WyIwMWEyMjgwYS1mYmI1LTcxNmMtYjA4ZS00ZTM0N2QwYTM2ZjUiXQ"
    )
    # A naive time (SQLite hands them back) is UTC, and written with its offset.
    assert (
        encode_cursor((datetime(2026, 11, 29, 10, 0, 0, 123456), "d-1"))
        == "WyIyMDI2LTExLTI5VDEwOjAwOjAwLjEyMzQ1NiswMDowMCIsImQtMSJd"
    )


def test_a_cursor_decodes_to_its_key() -> None:
    assert decode_cursor("WzVd", (int,)) == (5,)
    assert decode_cursor(
        "WyIyMDI2LTExLTI5VDEwOjAwOjAwLjEyMzQ1NiswMDowMCIsImQtMSJd", (datetime, str)
    ) == (
        datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC),
        "d-1",
    )


@pytest.mark.parametrize(
    ("cursor", "types"),
    [
        pytest.param("bm90IGpzb24", (int,), id="not-json"),  # b"not json"
        pytest.param("WzVd", (str,), id="int-for-str"),  # [5]
        pytest.param("WzVd", (int, str), id="too-short"),
        pytest.param("eyJhIjoxfQ", (int,), id="object"),  # {"a":1}
        pytest.param("W3RydWVd", (int,), id="bool-for-int"),  # [true]
        pytest.param("WzkyMjMzNzIwMzY4NTQ3NzU4MDhd", (int,), id="past-bigint"),  # [2**63]
        pytest.param("WyJhXHUwMDAwYiJd", (str,), id="nul-byte"),  # ["a\u0000b"]
        pytest.param("WyIyMDI2LTExLTI5VDEwOjAwOjAwIiwiZC0xIl0", (datetime, str), id="naive-time"),
        pytest.param("A", (int,), id="not-base64"),
    ],
)
def test_what_is_not_a_cursor(cursor: str, types: tuple[type, ...]) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, types)


async def test_a_bad_cursor_is_422_problem_json_at_query_cursor() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/items")
    async def items(cursor: Key | None = cursor_key(int)) -> dict[str, object]:
        return {"cursor": cursor}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/items")).json() == {"cursor": None}
        assert (await client.get("/items?cursor=WzVd")).json() == {"cursor": [5]}
        for bad in ("bm90IGpzb24", "%25%25%25", "x" * 201):
            r = await client.get(f"/items?cursor={bad}")
            assert r.status_code == 422, bad
            assert r.headers["content-type"] == "application/problem+json"
            assert [e["path"] for e in r.json()["errors"]] == ["query/cursor"], bad
        r = await client.get("/items?cursor=bm90IGpzb24")
    assert r.json()["errors"] == [
        {
            "path": "query/cursor",
            "type": "value_error",
            "message": "Value error, the value is not a cursor this service issued: pass "
            "`next_cursor` back unchanged",
        }
    ]
