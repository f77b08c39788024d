"""The notify service: its declaration and create_app."""

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth import JwksSource
from services.common.crypto import vault_from_settings
from services.common.erasure import ErasureLedger, after_erasure, replay_step
from services.common.runtime import Group, Service, service_app, service_runtime
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
    runtime = service_runtime(
        "notify",
        settings,
        bootstrap=bootstrap,
        metadata=[notify_metadata],
        engine=engine,
        create_tables=create_tables,
    )
    vault = vault_from_settings(settings)
    dispatcher = Dispatcher(sessions=runtime.sessions, settings=settings, vault=vault)
    clock = DeadlineClock(sessions=runtime.sessions, settings=settings)
    ledger = ErasureLedger(settings.erasure_ledger_path())

    @contextlib.asynccontextmanager
    async def wake_dispatcher(_: FastAPI) -> AsyncIterator[None]:
        # A committed delivery with dispatches wakes the dispatcher instead of its next poll.
        service.QUEUED.subscribe(runtime.engine, dispatcher.wake)
        try:
            yield
        finally:
            service.QUEUED.unsubscribe(runtime.engine, dispatcher.wake)

    return service_app(
        Service(
            name="notify",
            title="NRM Exchange notify",
            settings=settings,
            runtime=runtime,
            routers=[inbox_router, agency_router],
            jwks=jwks,
            vault=vault,
            startup=[replay_step(ledger, runtime.sessions, service.apply_erased)],
            access=consumer.access,  # recusals arrive there too, as `admin.changed`
            consumers=[
                Group(consumer.routing),
                Group(consumer.referrals, ledger, after_erasure(runtime.engine)),
            ],
            workers=[dispatcher, clock],
            context=wake_dispatcher,
            state={"dispatcher": dispatcher, "clock": clock},
        )
    )
