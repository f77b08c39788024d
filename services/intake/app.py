"""The intake service: create_app and its lifespan."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.app import create_app as create_service_app
from services.common.auth import JwksSource, verifier_from_settings
from services.common.crypto import vault_from_settings
from services.common.db import SessionFactory, create_engine, transaction
from services.common.erasure import Erasure, ErasureLedger, replay_ledger
from services.common.loops import Loop
from services.common.models import utcnow
from services.common.retention import load_retention
from services.common.runtime import ServiceRuntime
from services.intake import consumer, retention, service
from services.intake.api import clocks, retention_router, router
from services.intake.batch import SubmissionQueue
from services.intake.models import intake_metadata
from services.intake.settings import IntakeSettings

SERVICE = "intake"
log = logging.getLogger(__name__)


class IdentificationClock(Loop):
    """Announces missed reasonable-grounds deadlines and ended reflection periods, once each
    (`service.sweep_identification` claims each before staging its event)."""

    def __init__(self, *, sessions: SessionFactory, interval: float) -> None:
        super().__init__("intake:identification", interval)
        self._sessions = sessions

    async def tick(self) -> int:
        async with transaction(self._sessions) as session:
            return await service.sweep_identification(session, now=utcnow())


class RetentionSweep(Loop):
    """Erases the referrals past their retention period and under no legal hold (basis
    `retention_expired`), a batch per tick; the schedule is re-read from the policy file."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        engine: AsyncEngine,
        settings: IntakeSettings,
        ledger: ErasureLedger,
    ) -> None:
        super().__init__("intake:retention", settings.retention_sweep_seconds)
        self._sessions = sessions
        self._engine = engine
        self._settings = settings
        self._ledger = ledger
        self.erased = 0  # referrals erased since start, for operators' metrics and tests

    async def tick(self) -> int:
        schedule = load_retention(self._settings.policy_path)
        if schedule is None:
            return 0
        async with transaction(self._sessions) as session:
            erased = await retention.sweep_retention(
                session,
                retention=schedule,
                now=retention.clock(self._settings),
                ledger=self._ledger,
                agency=SERVICE,
            )
        if erased:
            await retention.settle(self._engine)
            log.info("retention sweep erased referrals", extra={"count": len(erased)})
        self.erased += len(erased)
        return len(erased)


async def replay_erasures(sessions: SessionFactory, ledger: ErasureLedger) -> int:
    """Before serving: shred again what the ledger says was erased but a restored backup (or a
    crash before the commit) brought back, re-announcing each. Returns how many (counts only
    are logged)."""
    shredded = 0

    async def apply(session: AsyncSession, entry: Erasure) -> None:
        nonlocal shredded
        shredded += await retention.shred_again(session, entry, agency=SERVICE)

    await replay_ledger(ledger, sessions, apply)
    if shredded:
        log.warning("erasure ledger replayed on a restored database", extra={"count": shredded})
    return shredded


def create_app(
    settings: IntakeSettings,
    *,
    bootstrap: str,
    engine: AsyncEngine | None = None,
    create_tables: bool = True,
    jwks: JwksSource | None = None,
) -> FastAPI:
    runtime = ServiceRuntime(
        service="intake",
        engine=engine
        or create_engine(
            settings.database_url_for(),
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        ),
        bootstrap=bootstrap,
        metadata=[intake_metadata],
        settings=settings,
        create_tables=create_tables,
    )

    clock = IdentificationClock(
        sessions=runtime.sessions, interval=settings.identification_sweep_seconds
    )
    ledger = ErasureLedger(settings.erasure_ledger_path())
    sweep = RetentionSweep(
        sessions=runtime.sessions, engine=runtime.engine, settings=settings, ledger=ledger
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # Before anything is served or consumed: a restored backup must not serve erased data.
        app.state.replayed_erasures = await replay_erasures(runtime.sessions, ledger)
        # Joined concurrently: forming a group takes the broker a moment per group.
        await asyncio.gather(
            runtime.watch_access(settings, consumer.access),
            runtime.consume_group(consumer.routing, None, settings=settings),
            runtime.consume_group(consumer.case_events, None, settings=settings),
        )
        submissions = app.state.submissions = SubmissionQueue(
            sessions=runtime.sessions, vault=app.state.vault
        )
        await submissions.start()
        await clock.start()
        await sweep.start()
        app.state.audit_http = httpx.AsyncClient(
            base_url=settings.audit_base, timeout=settings.audit_timeout_seconds
        )
        try:
            yield
        finally:
            await app.state.audit_http.aclose()
            await sweep.stop()
            await clock.stop()
            await submissions.stop()
            await runtime.stop()

    app = create_service_app(
        title="NRM Exchange intake",
        service="intake",
        settings=settings,
        routers=[router, clocks, retention_router],
        checks=runtime.checks,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.clock = clock
    app.state.sweep = sweep
    app.state.ledger = ledger
    app.state.vault = vault_from_settings(settings)
    app.state.access_audit = runtime.access_audit
    app.state.revocations = runtime.revocations
    app.state.verifier = verifier_from_settings(settings, jwks=jwks)
    return app
