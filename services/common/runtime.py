"""What every service runs besides its endpoints (database, producer, outbox relay, consumers),
and the one way a service declares itself (`Service`) and becomes an app (`service_app`)."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.cloudevents import CloudEvent
from services.common.access import AccessAudit
from services.common.app import ReadinessCheck, create_app, database_check
from services.common.auth import JwksSource, verifier_from_settings
from services.common.bus import (
    CONSUMER_GROUPS,
    AfterApply,
    ConsumerRunner,
    create_producer,
)
from services.common.consumers import Consumer
from services.common.crypto import Vault
from services.common.db import create_all, create_engine, session_factory
from services.common.erasure import ErasureLedger
from services.common.models import runtime_metadata
from services.common.outbox import OutboxRelay
from services.common.revocation import TYPES as REVOCATION_TYPES
from services.common.revocation import RevocationRefresher, Revocations, access_consumer
from services.common.settings import Settings

log = logging.getLogger(__name__)
C = TypeVar("C")


class ServiceRuntime:
    """Start in a lifespan, stop in reverse: consumers drained, outbox flushed, producer closed.

    After `start()`, a service starts its declared consumer groups with `consume_group` (or
    hands its own `ConsumerRunner`s, built with `producer` for dead letters, to `add_consumer`);
    they are stopped first on shutdown."""

    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        bootstrap: str,
        metadata: Sequence[MetaData],
        settings: Settings | None = None,
        create_tables: bool = True,
    ) -> None:
        """`create_tables` creates missing tables at start, for tests; the composition root
        (`nrm up`, `nrm serve`) passes False: its databases are migrated with Alembic, so a
        missing migration shows instead of being papered over."""
        self.service = service
        self.settings = settings or Settings()
        self.engine = engine
        self.bootstrap = bootstrap
        self.sessions = session_factory(engine)
        # Created in start(): aiokafka clients bind to the running event loop.
        self.producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.access_audit = AccessAudit(service=service, sessions=self.sessions)
        self.revocations = Revocations(self.sessions)
        self._refresher: RevocationRefresher | None = None
        self.consumers: list[ConsumerRunner] = []
        # Set by the embedded stack: consumers begin joining their groups and `joined` awaits
        # them, so every service's groups form at once (`services/stack.py`).
        self.join_later = False
        self._metadata = [*metadata, runtime_metadata]
        self._create_tables = create_tables

    @property
    def checks(self) -> list[ReadinessCheck]:
        return [("database", database_check(self.engine))]

    async def start(self) -> None:
        if self._create_tables:
            await create_all(self.engine, *self._metadata)
        await self.revocations.load()  # before the first request: revoked tokens stay refused
        self.producer = create_producer(self.bootstrap, client_id=self.service)
        await self.producer.start()
        s = self.settings
        self.relay = OutboxRelay(
            engine=self.engine,
            sessions=self.sessions,
            producer=self.producer,
            name=self.service,
            batch_size=s.outbox_batch_size,
            poll_interval=s.outbox_poll_interval,
            retention=timedelta(seconds=s.outbox_retention_seconds),
            groups=CONSUMER_GROUPS if s.replay_on_start else None,
            bootstrap=self.bootstrap,
            delivery_check_interval=s.delivery_check_seconds,
            replay_window=timedelta(seconds=s.replay_window_seconds),
            processed_retention=timedelta(seconds=s.processed_retention_seconds),
            source=s.event_source_for(self.service),
            erased=ErasureLedger(s.erasure_ledger_path()).recorded_at,
        )
        if s.replay_on_start:
            # Before any consumer or request: the broker may have lost what was not yet read.
            await self.relay.replay(timeout=s.replay_timeout_seconds)
        await self.relay.start()

    async def add_consumer(self, consumer: ConsumerRunner) -> None:
        self.consumers.append(consumer)  # stopped with the others, also if its start fails
        if self.join_later:
            consumer.begin()
        else:
            await consumer.start()

    async def joined(self) -> None:
        """Wait until every consumer has joined its group (after `join_later` starts)."""
        await asyncio.gather(*(c.joined() for c in self.consumers))

    async def consume_group(
        self,
        consumer: Consumer[C],
        context: C,
        *,
        settings: Settings,
        after_apply: AfterApply | None = None,
    ) -> None:
        """Start a declared consumer group (`services/common/consumers.py`), its handlers bound
        to `context`, configured from the service's settings; the runner reads only the types
        the group handles."""
        assert self.producer is not None, "start() first"
        if consumer.service != self.service:
            raise ValueError(f"{consumer.group} belongs to {consumer.service}, not {self.service}")
        name, topics = consumer.group, consumer.topic_names
        undeclared = [t for t in topics if name not in CONSUMER_GROUPS.get(t, ())]
        if undeclared:
            # Replay keeps an event until every declared group read it: a group missing there
            # could lose events across a restart of the embedded broker.
            raise ValueError(f"consumer group {name!r} is not in CONSUMER_GROUPS for {undeclared}")
        await self.add_consumer(
            ConsumerRunner(
                name=name,
                topics=topics,
                handler=consumer.bind(context),
                prepare=consumer.bind_prepare(context),
                sessions=self.sessions,
                bootstrap=self.bootstrap,
                producer=self.producer,
                max_attempts=settings.consumer_max_attempts,
                batch_size=settings.consumer_batch_size,
                session_timeout_ms=settings.kafka_session_timeout_ms,
                fetch_max_wait_ms=settings.fetch_wait_ms(background=consumer.background),
                fetch_min_bytes=settings.fetch_min_bytes(background=consumer.background),
                types=consumer.types,
                after_apply=after_apply,
            )
        )

    async def watch_access(
        self, settings: Settings, consumer: Consumer[Revocations] | None = None
    ) -> None:
        """Apply `access.revoked` / `access.restored` (consumer group `<service>.access`), so
        this service refuses a disabled subject's tokens within seconds. `consumer` is the
        service's declaration of that group when it handles more there (notify: recusals)."""
        revocations = self.revocations

        async def applied(event: CloudEvent) -> None:
            if event.type in REVOCATION_TYPES:
                await revocations.applied(event)

        await self.consume_group(
            consumer or access_consumer(self.service),
            revocations,
            settings=settings,
            after_apply=applied,
        )
        self._refresher = RevocationRefresher(self.revocations, settings.revocation_refresh_seconds)
        await self._refresher.start()

    async def stop_consumers(self) -> None:
        """Stop every consumer (first on shutdown: nothing new arrives while loops finish)."""
        for consumer in self.consumers:
            await consumer.stop()
        self.consumers.clear()

    async def stop(self) -> None:
        if self._refresher is not None:
            await self._refresher.stop()
        await self.stop_consumers()
        await self.access_audit.flush()
        if self.relay is not None:
            await self.relay.stop(flush=True)
        if self.producer is not None:
            await self.producer.stop()


def service_runtime(
    service: str,
    settings: Settings,
    *,
    bootstrap: str,
    metadata: Sequence[MetaData],
    engine: AsyncEngine | None = None,
    create_tables: bool = True,
) -> ServiceRuntime:
    """The service's runtime on `engine`, or on an engine for its own database URL."""
    return ServiceRuntime(
        service=service,
        engine=engine
        or create_engine(
            settings.database_url_for(),
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        ),
        bootstrap=bootstrap,
        metadata=metadata,
        settings=settings,
        create_tables=create_tables,
    )


class Worker(Protocol):
    """A background task the service runs while it serves (a `Loop`, a queue, a dispatcher)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Group:
    """A declared consumer group the service runs (services.common.consumers), its handlers
    bound to `context`: `ServiceRuntime.consume_group(consumer, context, after_apply=...)`."""

    consumer: Consumer[Any]
    context: Any = None
    after_apply: AfterApply | None = None


Step = Callable[[FastAPI], Awaitable[object]]
Context = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[object]]


@dataclass(frozen=True)
class Service:
    """What a service is made of; `service_app` builds the app, its lifespan and its state.

    Start order: the runtime (tables, revocations, producer, outbox replay), `startup` steps in
    order (erasure replay, seeding: before anything is served or consumed), the access watch
    and `consumers` concurrently (forming a group takes the broker a moment per group),
    `workers` in order, then `context` is entered. Stop: `context` left, consumers (nothing
    new arrives), workers in reverse, then the runtime (outbox flushed, producer closed)."""

    name: str
    title: str
    settings: Settings
    runtime: ServiceRuntime
    routers: Sequence[APIRouter]
    jwks: JwksSource | None = None
    vault: Vault | None = None
    # The service's declaration of its `<service>.access` group (revocations, and what else
    # it handles there: notify's recusals).
    access: Consumer[Revocations] | None = None
    consumers: Sequence[Group] = ()
    startup: Sequence[Step] = ()
    workers: Sequence[Worker] = ()
    context: Context | None = None
    # More `app.state` entries, for the service's own dependencies and for tests.
    state: Mapping[str, object] = field(default_factory=dict)
    # Completes the OpenAPI document with what only this deployment knows.
    document: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def service_app(spec: Service) -> FastAPI:
    """The app of a declared service (services.common.app.create_app underneath)."""
    runtime, settings = spec.runtime, spec.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            for step in spec.startup:
                await step(app)
            await asyncio.gather(
                runtime.watch_access(settings, spec.access),
                *(
                    runtime.consume_group(
                        g.consumer, g.context, settings=settings, after_apply=g.after_apply
                    )
                    for g in spec.consumers
                ),
            )
            async with contextlib.AsyncExitStack() as running:
                for worker in spec.workers:
                    await worker.start()
                    running.push_async_callback(worker.stop)
                # Unwound in reverse: `context`, then the consumers, then the workers.
                running.push_async_callback(runtime.stop_consumers)
                if spec.context is not None:
                    await running.enter_async_context(spec.context(app))
                yield
        finally:
            await runtime.stop()

    app = create_app(
        title=spec.title,
        service=spec.name,
        settings=settings,
        routers=spec.routers,
        checks=runtime.checks,
        lifespan=lifespan,
    )
    if spec.document is not None:
        document, complete = app.openapi, spec.document
        app.openapi = lambda: complete(document())  # type: ignore[method-assign]
    state = app.state
    state.runtime = runtime
    state.settings = settings
    state.access_audit = runtime.access_audit
    state.revocations = runtime.revocations
    state.verifier = verifier_from_settings(settings, jwks=spec.jwks)
    if spec.vault is not None:
        state.vault = spec.vault
    for name, value in spec.state.items():
        setattr(state, name, value)
    return app
