"""Query parameter types whose OpenAPI schema states exactly what the service accepts (a request
valid by the document is never refused by the service for the same value)."""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

# RFC 3339 `date-time` (JSON Schema's `format: date-time`), which is stricter than what pydantic
# parses on its own: it would take `0.0` (seconds since the epoch) or a date alone.
_RFC3339 = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError("an RFC 3339 date-time with an offset, e.g. 2026-11-20T10:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    """In UTC; an offset that carries the time past year 1 or 9999 (valid RFC 3339, e.g.
    `0001-01-01T00:00:00+01:00`) is the earliest or latest time there is."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc)]
"""A date-time query parameter: RFC 3339 with an offset, nothing else."""

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""A lowercase UUID as the services write their ids (UUIDv7)."""
