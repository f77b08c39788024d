"""The notify service: create_app and its lifespan."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_app as create_service_app
from services.common.auth import JwksSource, verifier_from_settings
from services.common.crypto import vault_from_settings
from services.common.db import create_engine
from services.common.erasure import ErasureLedger, after_erasure, replay_ledger
from services.common.runtime import ServiceRuntime
from services.notify import consumer, service
from services.notify.api import agency_router, inbox_router
from services.notify.models import notify_metadata
from services.notify.settings import NotifySettings
from services.notify.workers import DeadlineClock, Dispatcher


def create_app(
    settings: NotifySettings,
    *,
    bootstrap: str,
    engine: AsyncEngine | None = None,
    create_tables: bool = True,
    jwks: JwksSource | None = None,
) -> FastAPI:
    runtime = ServiceRuntime(
        service="notify",
        engine=engine
        or create_engine(
            settings.database_url_for(),
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        ),
        bootstrap=bootstrap,
        metadata=[notify_metadata],
        settings=settings,
        create_tables=create_tables,
    )
    vault = vault_from_settings(settings)
    dispatcher = Dispatcher(sessions=runtime.sessions, settings=settings, vault=vault)
    clock = DeadlineClock(sessions=runtime.sessions, settings=settings)
    ledger = ErasureLedger(settings.erasure_ledger_path())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # A restored backup is erased again before anything is served or sent.
        await replay_ledger(
            ledger,
            runtime.sessions,
            lambda session, e: service.apply_erased(session, referral_id=e.referral_id),
        )
        service.QUEUED.subscribe(runtime.engine, dispatcher.wake)
        await dispatcher.start()
        await clock.start()
        try:
            await asyncio.gather(
                # Recusals arrive as `admin.changed` on the access topic.
                runtime.watch_access(settings, consumer.access),
                runtime.consume_group(consumer.routing, None, settings=settings),
                runtime.consume_group(
                    consumer.referrals,
                    ledger,
                    settings=settings,
                    after_apply=after_erasure(runtime.engine),
                ),
            )
            yield
        finally:
            # Consumers first (no new deliveries), then the loops, then the outbox flush.
            for runner in runtime.consumers:
                await runner.stop()
            runtime.consumers.clear()
            await clock.stop()
            await dispatcher.stop()
            service.QUEUED.unsubscribe(runtime.engine, dispatcher.wake)
            await runtime.stop()

    app = create_service_app(
        title="NRM Exchange notify",
        service="notify",
        settings=settings,
        routers=[inbox_router, agency_router],
        checks=runtime.checks,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.vault = vault
    app.state.dispatcher = dispatcher
    app.state.clock = clock
    app.state.access_audit = runtime.access_audit
    app.state.revocations = runtime.revocations
    app.state.verifier = verifier_from_settings(settings, jwks=jwks)
    return app
