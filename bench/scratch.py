"""Shared by the bench scripts: a scratch PostgreSQL schema, the results table, a trace context."""

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

from services.common.db import create_engine


def postgres_url() -> str | None:
    return os.environ.get("NRM_BENCH_DATABASE_URL") or os.environ.get("NRM_TEST_DATABASE_URL")


@contextlib.asynccontextmanager
async def scratch_schema(url: str) -> AsyncIterator[str]:
    """A fresh schema for one run, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def report(name: str, results: list[dict[str, Any]], out: str) -> None:
    cols = list(results[0])
    print(" | ".join(cols))
    for r in results:
        print(" | ".join(str(r.get(c, "")) for c in cols))
    Path(out).write_text(json.dumps({name: results}, indent=2) + "\n")


def serve_http(app: Any, port: int) -> None:
    """Serve a benchmark's server on loopback, quietly, keeping idle connections as `nrm serve`
    does (`NRM_HTTP_KEEP_ALIVE_SECONDS`)."""
    import uvicorn

    from services.common.settings import Settings

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=Settings().http_keep_alive_seconds,
    )


def traceparent() -> str:
    """A W3C trace context for a bench event. The services stamp one on every event a request or
    a handler stages, so a consumer continues the trace (`tracing.event_span`); an event without
    one starts a trace through the OpenTelemetry SDK, a path real traffic rarely takes."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"
