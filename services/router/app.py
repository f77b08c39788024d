"""The router service: its declaration and create_app."""

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth import JwksSource
from services.common.erasure import ErasureLedger, after_erasure, replay_step
from services.common.runtime import Group, Service, service_app, service_runtime
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
    runtime = service_runtime(
        "router",
        settings,
        bootstrap=bootstrap,
        metadata=[router_metadata],
        engine=engine,
        create_tables=create_tables,
    )
    ledger = ErasureLedger(settings.erasure_ledger_path())
    handlers = RouterHandlers(policy, lambda: runtime.revocations.disabled("agency"), ledger)

    return service_app(
        Service(
            name="router",
            title="NRM Exchange router",
            settings=settings,
            runtime=runtime,
            routers=[router],
            jwks=jwks,
            startup=[replay_step(ledger, runtime.sessions, service.apply_erased)],
            access=consumer.access,
            consumers=[
                Group(consumer.referrals, handlers, after_erasure(runtime.engine)),
                Group(consumer.case_events, handlers),
            ],
            state={"handlers": handlers},
        )
    )
