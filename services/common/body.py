"""Reading JSON request bodies by hand, where an endpoint needs the raw bytes or a size limit
enforced before parsing (FastAPI's body parameters read everything first).

Not FastAPI's `max_body_size` (0.165): Starlette's limiter answers a declared oversize
Content-Length with its own text/plain 413, replacing the problem+json one, and a route's
limit is fixed where it is declared while ours is a setting (`NRM_MAX_BODY_BYTES`)."""

import json
from decimal import Decimal
from typing import Any

from fastapi import HTTPException, Request
from pydantic import TypeAdapter, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import (
    PayloadTooLarge,
    UnprocessableContent,
    UnsupportedMediaType,
    field_errors,
    problem,
)


class BodyLimit:
    """Every route's body limit (`NRM_MAX_BODY_BYTES`), forms and FastAPI-parsed bodies
    included: a declared oversize `Content-Length` is answered 413 problem+json unread; a
    streamed body fails with a 413 once it passes the limit, before it is all buffered."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"The body exceeds {self.limit} bytes."
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await problem(413, detail, instance=scope["path"])(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # FastAPI's HTTPException: its body reader lets it through (others become 400).
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited, send)


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_media(request: Request) -> None:
    """A router dependency for bodies FastAPI parses: one that is not `application/json` is a
    415 (FastAPI would try it as JSON and answer 422)."""
    has_body = (
        request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    )
    if has_body and _media(request) != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")


async def read_json(request: Request, *, limit: int) -> bytes:
    """The raw JSON body, refusing other media types (415) and oversize bodies (413) early."""
    if _media(request) != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The body exceeds {limit} bytes.")
    return bytes(body)


def _whole_numbers(raw: bytes) -> bytes:
    """The JSON with each number that has no fractional part (`56.0`, `5.6e1`) written as an
    integer: JSON Schema counts it as one (an `integer` field takes it), strict pydantic does not.
    Other numbers, and a body that is not JSON, are left for the validation to judge."""
    if not any(c in raw for c in b".eE"):
        return raw
    changed = False

    def number(text: str) -> Any:
        nonlocal changed
        value = Decimal(text)
        if value.is_finite() and value == value.to_integral_value():
            changed = True
            return int(value)
        return float(text)

    try:
        document = json.loads(raw, parse_float=number)
    except ValueError:  # not JSON, or not UTF-8 (UnicodeDecodeError): validate_json says so
        return raw
    return json.dumps(document).encode() if changed else raw


def parse(adapter: TypeAdapter[Any], raw: bytes) -> Any:
    """Validate JSON bytes; a mismatch is a 422 listing field paths (never the values)."""
    try:
        # Strict: `0` is not `false` and `"1"` is not `1` (the schema says what is accepted),
        # but `1.0` is `1`, as in JSON Schema.
        return adapter.validate_json(_whole_numbers(raw), strict=True)
    except ValidationError as exc:
        raise UnprocessableContent(
            "The request does not match the schema.", errors=field_errors(exc.errors())
        ) from None


def body_schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """`openapi_extra` documenting a hand-read JSON body."""
    schema = adapter.json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, schema.get("$defs", {}))}},
        },
        # read_json's refusals (services.common.openapi adds the problem+json content).
        "responses": {
            "413": {"description": "The body is too large"},
            "415": {"description": "The body is not `application/json`"},
        },
    }


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with its `#/$defs/…` references replaced by their definitions: inside an
    OpenAPI document such a reference would resolve against the document root, not this schema
    (the contracts have no recursive models)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node
