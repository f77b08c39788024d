"""One cursor pagination for every list: an opaque cursor, a bounded `limit`, keyset queries.

A page is fetched with one row more than asked for: that row only says whether a next page
exists, so a page that is exactly full ends the list (no extra empty page). The cursor is the
last row's sort key, JSON in unpadded base64url: clients pass `next_cursor` back unchanged.
A cursor this module did not make is refused as the schema refuses any other bad value: 422
problem+json at the field path `query/cursor`."""

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from sqlalchemy import and_, or_
from sqlalchemy.sql import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")

KeyPart = str | int | datetime
Key = tuple[KeyPart, ...]
"""A row's position in its list: the values of the columns the list is sorted by."""

CURSOR_MAX_LENGTH = 200
# Unpadded base64url: the only characters a cursor is made of.
CURSOR_PATTERN = rf"^[A-Za-z0-9_-]{{2,{CURSOR_MAX_LENGTH}}}$"
BAD_CURSOR = "is not a cursor this service issued: pass `next_cursor` back unchanged"

Cursor = Annotated[
    str | None,
    Query(
        pattern=CURSOR_PATTERN,
        max_length=CURSOR_MAX_LENGTH,
        description="`next_cursor` of the previous page, passed back unchanged (opaque)",
    ),
]
Limit100 = Annotated[int, Query(ge=1, le=100, description="Items per page")]
Limit500 = Annotated[int, Query(ge=1, le=500, description="Items per page")]

# What a string part of a key may hold (ids, references): printable ASCII. PostgreSQL cannot
# take a NUL byte in a text parameter, and nothing the services sort by needs more.
_TEXT = re.compile(r"[\x20-\x7e]{1,100}")
_BIGINT = 2**63


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(key: Key) -> str:
    """The opaque cursor of a row whose sort key is `key`."""
    parts = [_utc(p).isoformat() if isinstance(p, datetime) else p for p in key]
    return base64.urlsafe_b64encode(orjson.dumps(parts)).rstrip(b"=").decode()


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the services store UTC.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def decode_cursor(cursor: str, types: Sequence[type]) -> Key:
    """The key in `cursor`, one part of each of `types` (str, int or datetime, in order)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor(BAD_CURSOR) from exc
    if not isinstance(parts, list) or len(parts) != len(types):
        raise InvalidCursor(BAD_CURSOR)
    return tuple(_part(p, t) for p, t in zip(parts, types, strict=True))


def _part(value: Any, kind: type) -> KeyPart:
    if kind is int and type(value) is int and -_BIGINT <= value < _BIGINT:
        return value
    if kind is str and isinstance(value, str) and _TEXT.fullmatch(value):
        return value
    if kind is datetime and isinstance(value, str) and _TEXT.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment.astimezone(UTC)
    raise InvalidCursor(BAD_CURSOR)


def cursor_key(*types: type) -> Any:
    """A dependency reading the `cursor` query parameter as a key of `types` (None: the first
    page). A value that is not such a cursor: 422, as a schema violation at `query/cursor`."""

    async def read(cursor: Cursor = None) -> Key | None:
        if cursor is None:
            return None
        try:
            return decode_cursor(cursor, types)
        except InvalidCursor as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("query", "cursor"),
                        "msg": f"Value error, the value {exc}",
                        "input": cursor,
                    }
                ]
            ) from exc

    return Depends(read)


def after(columns: Sequence[Any], key: Key, *, descending: bool = False) -> ColumnElement[bool]:
    """Rows past `key` in the order of `columns` (lexicographic, all one direction)."""
    clauses = []
    for i, column in enumerate(columns):
        beyond = column < key[i] if descending else column > key[i]
        clauses.append(and_(*(c == k for c, k in zip(columns[:i], key, strict=False)), beyond))
    return or_(*clauses)


async def paginate(
    session: AsyncSession,
    query: Any,
    *,
    order: Sequence[Any],
    key: Callable[[Any], Key],
    cursor: Key | None,
    limit: int,
    descending: bool = False,
) -> Page[Any]:
    """One page of `query` sorted by the (unique together) `order` columns, from past `cursor`
    on; `key` gives a fetched row's values of those columns, and may add parts the list keeps
    for the whole walk (audit's bound), which do not place the page."""
    if cursor is not None:
        query = query.where(after(order, cursor[: len(order)], descending=descending))
    query = query.order_by(*(c.desc() if descending else c for c in order)).limit(limit + 1)
    rows = list(await session.exec(query))
    items = rows[:limit]
    return Page(items, encode_cursor(key(items[-1])) if len(rows) > limit else None)
