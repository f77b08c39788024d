"""The intake service: create_app and its lifespan."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topics import CASE_EVENTS, ROUTING
from services.common.app import create_app as create_service_app
from services.common.auth import JwksSource, verifier_from_settings
from services.common.crypto import vault_from_settings
from services.common.db import SessionFactory, create_engine, transaction
from services.common.loops import Loop
from services.common.models import utcnow
from services.common.runtime import ServiceRuntime
from services.intake import service
from services.intake.api import clocks, router
from services.intake.batch import SubmissionQueue
from services.intake.consumer import on_case_event, on_routing
from services.intake.models import intake_metadata
from services.intake.settings import IntakeSettings


class IdentificationClock(Loop):
    """Announces missed reasonable-grounds deadlines and ended reflection periods, once each
    (`service.sweep_identification` claims each before staging its event)."""

    def __init__(self, *, sessions: SessionFactory, interval: float) -> None:
        super().__init__("intake:identification", interval)
        self._sessions = sessions

    async def tick(self) -> int:
        async with transaction(self._sessions) as session:
            return await service.sweep_identification(session, now=utcnow())


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

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # Joined concurrently: forming a group takes the broker a moment per group.
        await asyncio.gather(
            runtime.watch_access(settings),
            runtime.consume("intake.routing", [ROUTING.name], on_routing, settings=settings),
            runtime.consume(
                "intake.case-events", [CASE_EVENTS.name], on_case_event, settings=settings
            ),
        )
        submissions = app.state.submissions = SubmissionQueue(
            sessions=runtime.sessions, vault=app.state.vault
        )
        await submissions.start()
        await clock.start()
        try:
            yield
        finally:
            await clock.stop()
            await submissions.stop()
            await runtime.stop()

    app = create_service_app(
        title="NRM Exchange intake",
        service="intake",
        settings=settings,
        routers=[router, clocks],
        checks=runtime.checks,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.clock = clock
    app.state.vault = vault_from_settings(settings)
    app.state.access_audit = runtime.access_audit
    app.state.revocations = runtime.revocations
    app.state.verifier = verifier_from_settings(settings, jwks=jwks)
    return app
