"""What every service runs besides its endpoints: database, producer, outbox relay, consumers."""

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, TypeVar

from aiokafka import AIOKafkaProducer
from fastapi import Depends
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.cloudevents import CloudEvent
from services.common.access import AccessAudit
from services.common.app import ReadinessCheck, database_check, from_state
from services.common.bus import (
    CONSUMER_GROUPS,
    AfterApply,
    ConsumerRunner,
    create_producer,
)
from services.common.consumers import Consumer
from services.common.db import create_all, session_factory
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
        await consumer.start()
        self.consumers.append(consumer)

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
                sessions=self.sessions,
                bootstrap=self.bootstrap,
                producer=self.producer,
                max_attempts=settings.consumer_max_attempts,
                batch_size=settings.consumer_batch_size,
                session_timeout_ms=settings.kafka_session_timeout_ms,
                fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
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

    async def stop(self) -> None:
        if self._refresher is not None:
            await self._refresher.stop()
        for consumer in self.consumers:
            await consumer.stop()
        await self.access_audit.flush()
        if self.relay is not None:
            await self.relay.stop(flush=True)
        if self.producer is not None:
            await self.producer.stop()


Runtime = Annotated[ServiceRuntime, Depends(from_state("runtime"))]
