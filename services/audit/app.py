"""The audit service: create_app and its lifespan."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.cloudevents import CloudEvent
from services.audit import consumer, service
from services.audit.api import router
from services.audit.models import audit_metadata
from services.audit.settings import AuditSettings
from services.common.app import create_app as create_service_app
from services.common.auth import JwksSource, verifier_from_settings
from services.common.crypto import Vault, vault_from_settings
from services.common.db import SessionFactory, create_engine, transaction
from services.common.erasure import ErasureLedger
from services.common.loops import Loop
from services.common.runtime import ServiceRuntime


class Checkpointer(Loop):
    """Signs the chain head every `checkpoint_interval_seconds` when it moved."""

    def __init__(self, *, sessions: SessionFactory, settings: AuditSettings, vault: Vault) -> None:
        super().__init__("audit:checkpoints", settings.checkpoint_interval_seconds)
        self._sessions = sessions
        self._settings = settings
        self._vault = vault

    async def tick(self) -> int:
        async with transaction(self._sessions) as session:
            await service.checkpoint(
                session,
                name=self._settings.key_name,
                origin=self._settings.origin,
                vault=self._vault,
            )
        return 0


def create_app(
    settings: AuditSettings,
    *,
    bootstrap: str,
    engine: AsyncEngine | None = None,
    create_tables: bool = True,
    jwks: JwksSource | None = None,
) -> FastAPI:
    runtime = ServiceRuntime(
        service="audit",
        engine=engine
        or create_engine(
            settings.database_url_for(),
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        ),
        bootstrap=bootstrap,
        metadata=[audit_metadata],
        settings=settings,
        create_tables=create_tables,
    )
    vault = vault_from_settings(settings)
    checkpointer = Checkpointer(sessions=runtime.sessions, settings=settings, vault=vault)

    ledger = ErasureLedger(settings.erasure_ledger_path())

    async def after_apply(event: CloudEvent) -> None:
        if event.type == service.ERASED:
            await service.compact(runtime.engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            # Before anything is served or consumed: a database restored from a backup taken
            # before an erasure still holds the key the ledger says was destroyed.
            if await service.replay_erasures(runtime.sessions, ledger.entries()):
                await service.compact(runtime.engine)
            await asyncio.gather(
                runtime.watch_access(settings, consumer.access),
                runtime.consume_group(
                    consumer.events,
                    consumer.Chain(vault=vault, ledger=ledger),
                    settings=settings,
                    after_apply=after_apply,
                ),
            )
            await checkpointer.start()
            yield
        finally:
            await checkpointer.stop()
            await runtime.stop()

    app = create_service_app(
        title="NRM Exchange audit",
        service="audit",
        settings=settings,
        routers=[router],
        checks=runtime.checks,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.vault = vault
    app.state.checkpointer = checkpointer
    app.state.ledger = ledger
    app.state.access_audit = runtime.access_audit
    app.state.revocations = runtime.revocations
    app.state.verifier = verifier_from_settings(settings, jwks=jwks)
    return app
