"""Reading JSON request bodies by hand, where an endpoint needs the raw bytes or a size limit
enforced before parsing (FastAPI's body parameters read everything first).

Not FastAPI's `max_body_size` (0.165): Starlette's limiter answers a declared oversize
Content-Length with its own text/plain 413, replacing the problem+json one, and a route's
limit is fixed where it is declared while ours is a setting (`NRM_MAX_BODY_BYTES`)."""

import json
from decimal import Decimal
from typing import Any

from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from services.common.errors import (
    PayloadTooLarge,
    UnprocessableContent,
    UnsupportedMediaType,
    field_errors,
)


async def read_json(request: Request, *, limit: int) -> bytes:
    """The raw JSON body, refusing other media types (415) and oversize bodies (413) early."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
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
