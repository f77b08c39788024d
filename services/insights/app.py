"""The insights service: its declaration and create_app."""

from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.auth import JwksSource
from services.common.erasure import ErasureLedger, after_erasure, replay_step
from services.common.runtime import Group, Service, service_app, service_runtime
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
    runtime = service_runtime(
        "insights",
        settings,
        bootstrap=bootstrap,
        metadata=[insights_metadata],
        engine=engine,
        create_tables=create_tables,
    )
    ledger = ErasureLedger(settings.erasure_ledger_path())

    def document(doc: dict[str, Any]) -> dict[str, Any]:
        return state_periods(doc, period_months=settings.period_months)

    return service_app(
        Service(
            name="insights",
            title="NRM Exchange insights",
            settings=settings,
            runtime=runtime,
            routers=[router, open_data],
            jwks=jwks,
            startup=[replay_step(ledger, runtime.sessions, service.apply_erased)],
            access=consumer.access,
            consumers=[Group(consumer.events, ledger, after_erasure(runtime.engine))],
            document=document,
        )
    )
