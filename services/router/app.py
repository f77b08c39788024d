"""The router service: create_app and its lifespan."""

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
from services.router import consumer, service
from services.router.api import router
from services.router.consumer import RouterHandlers
from services.router.models import router_metadata
from services.router.policy import Policy
from services.router.settings import RouterSettings


def create_app(
    settings: RouterSettings,
    *,
    bootstrap: str,
    engine: AsyncEngine | None = None,
    create_tables: bool = True,
    jwks: JwksSource | None = None,
    policy: Policy | None = None,
) -> FastAPI:
    """Loads the policy first: a bad policy file stops the service here, before it consumes."""
    policy = policy or Policy.load(
        settings.policy_path,
        deadlines=settings.deadlines,
        identification=settings.identification,
    )
    runtime = ServiceRuntime(
        service="router",
        engine=engine
        or create_engine(
            settings.database_url_for(),
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        ),
        bootstrap=bootstrap,
        metadata=[router_metadata],
        settings=settings,
        create_tables=create_tables,
    )
    ledger = ErasureLedger(settings.erasure_ledger_path())
    handlers = RouterHandlers(policy, lambda: runtime.revocations.disabled("agency"), ledger)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # A restored backup is erased again before anything is routed or served.
        await replay_ledger(
            ledger,
            runtime.sessions,
            lambda session, e: service.apply_erased(session, referral_id=e.referral_id),
        )
        try:
            await asyncio.gather(
                runtime.watch_access(settings, consumer.access),
                runtime.consume_group(
                    consumer.referrals,
                    handlers,
                    settings=settings,
                    after_apply=after_erasure(runtime.engine),
                ),
                runtime.consume_group(consumer.case_events, handlers, settings=settings),
            )
            yield
        finally:
            await runtime.stop()

    app = create_service_app(
        title="NRM Exchange router",
        service="router",
        settings=settings,
        routers=[router],
        checks=runtime.checks,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.handlers = handlers
    app.state.access_audit = runtime.access_audit
    app.state.revocations = runtime.revocations
    app.state.verifier = verifier_from_settings(settings, jwks=jwks)
    return app
