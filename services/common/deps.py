"""Typed dependencies on what `service_app` put in the app's state: the runtime, the settings,
the keys, and database sessions whose dependency owns the transaction."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from pydantic import TypeAdapter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.body import parse, read_json
from services.common.crypto import Vault
from services.common.db import transaction
from services.common.runtime import ServiceRuntime

T = TypeVar("T")


def from_state(attr: str, kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency returning `request.app.state.<attr>`, checked to be a `kind`: a service
    wired with the wrong object fails on its first request, not deep in an endpoint."""

    async def get(request: Request) -> T:  # async: a sync dependency costs a thread hop
        value = getattr(request.app.state, attr)
        if not isinstance(value, kind):
            raise TypeError(f"app.state.{attr} is a {type(value).__name__}, not a {kind.__name__}")
        return value

    return get


Runtime = Annotated[ServiceRuntime, Depends(from_state("runtime", ServiceRuntime))]
Keys = Annotated[Vault, Depends(from_state("vault", Vault))]


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    runtime: ServiceRuntime = request.app.state.runtime
    async with runtime.sessions() as session:
        yield session


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    runtime: ServiceRuntime = request.app.state.runtime
    async with transaction(runtime.sessions) as session:
        yield session


# Scope "function": the session closes (the transaction commits) when the endpoint returns,
# before the response is sent; an error raised by the endpoint rolls it back before the error
# handlers run (their audit records are written in transactions of their own).
ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
"""A session for reads (`async with sessions()`), closed when the endpoint returns."""

WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
"""A session in one write transaction (`transaction()`, a foreground writer: on SQLite it is
queued ahead of consumers and the outbox), committed when the endpoint returns, rolled back if
it raises. Declare it after the principal and the body: dependencies are resolved in order,
and on SQLite the write lock is held from here on, so neither an audited refusal nor a slow
client's body may come after it. Nothing in the endpoint may open a transaction of its own
(on SQLite it would wait for this one): pass this session on instead."""


def json_body(adapter: TypeAdapter[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency: the JSON body validated by `adapter`, within the service's body limit
    (`max_body_bytes`); read before a `WriteSession` declared after it takes the lock."""

    async def body(request: Request) -> T:
        limit: int = request.app.state.settings.max_body_bytes
        value: T = parse(adapter, await read_json(request, limit=limit))
        return value

    return body
