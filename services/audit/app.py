"""The audit service: its declaration and create_app."""

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.cloudevents import CloudEvent
from services.audit import consumer, service
from services.audit.api import router
from services.audit.models import audit_metadata
from services.audit.settings import AuditSettings
from services.common.auth import JwksSource
from services.common.crypto import Vault, vault_from_settings
from services.common.db import SessionFactory, transaction
from services.common.erasure import ErasureLedger
from services.common.loops import Loop
from services.common.runtime import Group, Service, service_app, service_runtime


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
    runtime = service_runtime(
        "audit",
        settings,
        bootstrap=bootstrap,
        metadata=[audit_metadata],
        engine=engine,
        create_tables=create_tables,
    )
    vault = vault_from_settings(settings)
    checkpointer = Checkpointer(sessions=runtime.sessions, settings=settings, vault=vault)
    ledger = ErasureLedger(settings.erasure_ledger_path())

    async def after_apply(event: CloudEvent) -> None:
        if event.type == service.ERASED:
            await service.compact(runtime.engine)

    async def replay_erasures(_: FastAPI) -> None:
        # Before anything is served or consumed: a database restored from a backup taken
        # before an erasure still holds the key the ledger says was destroyed.
        if await service.replay_erasures(runtime.sessions, ledger.entries()):
            await service.compact(runtime.engine)

    return service_app(
        Service(
            name="audit",
            title="NRM Exchange audit",
            settings=settings,
            runtime=runtime,
            routers=[router],
            jwks=jwks,
            vault=vault,
            startup=[replay_erasures],
            access=consumer.access,
            consumers=[
                Group(consumer.events, consumer.Chain(vault=vault, ledger=ledger), after_apply)
            ],
            workers=[checkpointer],
            state={"checkpointer": checkpointer, "ledger": ledger},
        )
    )
