"""The insights service: create_app and its lifespan."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.app import create_app as create_service_app
from services.common.auth import JwksSource, verifier_from_settings
from services.common.db import create_engine
from services.common.erasure import ErasureLedger, after_erasure, replay_ledger
from services.common.runtime import ServiceRuntime
from services.insights import consumer, service
from services.insights.api import open_data, router, state_periods
from services.insights.models import insights_metadata
from services.insights.settings import InsightsSettings


def create_app(
    settings: InsightsSettings,
    *,
    bootstrap: str,
    engine: AsyncEngine | None = None,
    create_tables: bool = True,
    jwks: JwksSource | None = None,
) -> FastAPI:
    runtime = ServiceRuntime(
        service="insights",
        engine=engine
        or create_engine(
            settings.database_url_for(),
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        ),
        bootstrap=bootstrap,
        metadata=[insights_metadata],
        create_tables=create_tables,
    )
    ledger = ErasureLedger(settings.erasure_ledger_path())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # A restored backup loses its link to erased referrals again before it answers.
        await replay_ledger(
            ledger,
            runtime.sessions,
            lambda session, e: service.apply_erased(session, referral_id=e.referral_id),
        )
        try:
            await asyncio.gather(
                runtime.watch_access(settings, consumer.access),
                runtime.consume_group(
                    consumer.events,
                    ledger,
                    settings=settings,
                    after_apply=after_erasure(runtime.engine),
                ),
            )
            yield
        finally:
            await runtime.stop()

    app = create_service_app(
        title="NRM Exchange insights",
        service="insights",
        settings=settings,
        routers=[router, open_data],
        checks=runtime.checks,
        lifespan=lifespan,
    )
    document = app.openapi
    app.openapi = lambda: state_periods(document(), period_months=settings.period_months)  # type: ignore[method-assign]
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.access_audit = runtime.access_audit
    app.state.revocations = runtime.revocations
    app.state.verifier = verifier_from_settings(settings, jwks=jwks)
    return app
