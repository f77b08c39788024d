"""The composition root: every service in one process behind one port (the embedded default).

The only module that imports every service. Paths are unique across services (DESIGN.md), so
requests are dispatched by path prefix to each service's own app, which keeps its own state,
database and consumers exactly as when it runs alone (`nrm serve <service>`).
"""

import asyncio
import contextlib
import copy
from collections.abc import MutableMapping
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import MetaData
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from services.audit.app import create_app as create_audit
from services.audit.models import audit_metadata
from services.audit.settings import AuditSettings
from services.common.app import (
    METRICS_RESPONSES,
    add_ops_route,
    add_response_headers,
    docs_page,
    metrics_response,
)
from services.common.bus import broker_reachable
from services.common.errors import NotFound, install_error_handlers
from services.common.openapi import install as install_openapi
from services.common.routes import ROUTES
from services.common.settings import Settings
from services.console.app import create_app as create_console
from services.console.settings import ConsoleSettings
from services.identity.app import create_app as create_identity
from services.identity.models import identity_metadata
from services.identity.settings import IdentitySettings
from services.insights.app import create_app as create_insights
from services.insights.models import insights_metadata
from services.insights.settings import InsightsSettings
from services.intake.app import create_app as create_intake
from services.intake.models import intake_metadata
from services.intake.settings import IntakeSettings
from services.notify.app import create_app as create_notify
from services.notify.models import notify_metadata
from services.notify.settings import NotifySettings
from services.router.app import create_app as create_router
from services.router.models import router_metadata
from services.router.settings import RouterSettings


def create_service(
    name: str,
    *,
    bootstrap: str,
    jwks: Any = None,
    credentials_file: Path | None = None,
    people_file: Path | None = None,
) -> FastAPI:
    """One service's app from its own settings (the environment), as `nrm serve <name>` runs it.
    Its database must have been migrated (`nrm db upgrade`): no tables are created here."""
    if name == "identity":
        return create_identity(
            IdentitySettings(),
            bootstrap=bootstrap,
            seed_from=Settings().config_dir / "agencies.yaml",
            credentials_file=credentials_file,
            people_file=people_file,
            create_tables=False,
        )
    options: dict[str, Any] = {"bootstrap": bootstrap, "jwks": jwks, "create_tables": False}
    factories: dict[str, Any] = {
        "intake": lambda: create_intake(IntakeSettings(), **options),
        "router": lambda: create_router(RouterSettings(), **options),
        "notify": lambda: create_notify(NotifySettings(), **options),
        "audit": lambda: create_audit(AuditSettings(), **options),
        "insights": lambda: create_insights(InsightsSettings(), **options),
    }
    if name not in factories:
        raise ValueError(f"unknown service {name!r}; one of identity, {', '.join(factories)}")
    app: FastAPI = factories[name]()
    return app


def console_app() -> Any:
    """The console alone, as `nrm serve console` runs it: its pages with the security headers
    every response of the exchange carries."""
    console = create_console(ConsoleSettings())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            send = _with_security_headers(send)
        await console(scope, receive, send)

    return app


SERVICES = ("identity", "intake", "router", "notify", "audit", "insights")
SETTINGS: dict[str, type[Settings]] = {
    "identity": IdentitySettings,
    "intake": IntakeSettings,
    "router": RouterSettings,
    "notify": NotifySettings,
    "audit": AuditSettings,
    "insights": InsightsSettings,
    "console": ConsoleSettings,  # no database: `nrm up` serves it, or `nrm serve console`
}
METADATA: dict[str, MetaData] = {
    "identity": identity_metadata,
    "intake": intake_metadata,
    "router": router_metadata,
    "notify": notify_metadata,
    "audit": audit_metadata,
    "insights": insights_metadata,
}


def migrations(service: str) -> Path:
    """The service's Alembic scripts (`services/<service>/migrations`)."""
    return Path(__file__).resolve().parent / service / "migrations"


def database_url(service: str) -> str:
    """The service's database URL from the environment (`NRM_DATABASE_URL` with `{service}`)."""
    return Settings().database_url_for(service)


# Answered by the stack itself, for every service at once (the services' own `/healthz`,
# `/readyz` and `/metrics` are left out of their documents here): described by the document
# `/openapi/exchange.json`.
STACK_PATHS = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi/exchange.json")


class StackHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    broker: str = Field(description="`ok`, or the error met reaching the broker")
    services: dict[str, dict[str, str]] = Field(
        description="Per service, each check (`database`, `consumers`): `ok` or what failed"
    )


class Stack:
    """An ASGI app: the services' apps, their lifespans run in order, one health check."""

    def __init__(
        self,
        *,
        bootstrap: str,
        credentials_file: Path | None = None,
        people_file: Path | None = None,
    ) -> None:
        identity = create_service(
            "identity",
            bootstrap=bootstrap,
            credentials_file=credentials_file,
            people_file=people_file,
        )
        jwks = identity.state.jwks  # tokens are checked against identity's keys in process
        self.apps: dict[str, FastAPI] = {"identity": identity} | {
            name: create_service(name, bootstrap=bootstrap, jwks=jwks)
            for name in ("intake", "router", "notify", "audit", "insights")
        }
        # The console has no database or consumers: served beside the services, not one of them.
        self.console = create_console(ConsoleSettings())
        self.bootstrap = bootstrap
        self.settings = Settings()
        self._prefixes = sorted(
            ((p, self.apps[name]) for name, prefixes in ROUTES.items() for p in prefixes),
            key=lambda item: -len(item[0]),
        )
        self.ready = False
        self._documents: dict[str, dict[str, Any]] | None = None
        self.ops = self._ops_app()

    def documents(self) -> dict[str, dict[str, Any]]:
        """Each service's OpenAPI document as served here: without the operations the stack
        answers for all of them (those are in `exchange`'s)."""
        if self._documents is not None:
            return self._documents
        documents = {}
        for name, app in self.apps.items():
            document = copy.deepcopy(app.openapi())
            for path in ("/healthz", "/readyz", "/metrics"):
                document["paths"].pop(path, None)
            documents[name] = document
        documents["exchange"] = self.ops.openapi()
        self._documents = documents
        return documents

    def _ops_app(self) -> FastAPI:
        """The stack's own endpoints: health of every service, the process's metrics, and the
        page listing every service's document."""
        docs = self.settings.api_docs_enabled
        ops = FastAPI(
            title="NRM Exchange: the running stack",
            version="1",
            openapi_url="/openapi/exchange.json" if docs else None,
            docs_url=None,
            redoc_url=None,
            telemetry={"tracing": False, "metrics": False, "logs": False},
        )
        install_error_handlers(ops)
        health = {
            "response_model": StackHealth,
            "responses": {503: {"model": StackHealth, "description": "Something is down"}},
            "tags": ["operations"],
        }

        async def healthz() -> JSONResponse:
            status = await self.status()
            return JSONResponse(status, status_code=200 if status["status"] == "ok" else 503)

        async def readyz() -> JSONResponse:
            return await healthz()

        add_ops_route(
            ops,
            "/healthz",
            healthz,
            summary="Every service's database and consumers, and the broker",
            **health,
        )
        add_ops_route(
            ops, "/readyz", readyz, summary="Ready: the same checks as /healthz", **health
        )

        async def metrics(request: Request) -> Response:
            return metrics_response(request, self.settings)

        add_ops_route(
            ops,
            "/metrics",
            metrics,
            summary="Prometheus metrics of every service in this process",
            response_class=Response,
            responses=METRICS_RESPONSES,
            include_in_schema=self.settings.metrics_enabled,
            tags=["operations"],
        )
        if docs:

            async def api_docs() -> HTMLResponse:
                return docs_page(self.documents())

            add_ops_route(
                ops,
                "/docs",
                api_docs,
                summary="Every service's OpenAPI document, listed on one page",
                response_class=HTMLResponse,
                tags=["documentation"],
            )

            async def service_document(
                service: Annotated[str, PathParam(description=", ".join(self.apps))],
            ) -> JSONResponse:
                documents = self.documents()
                if service not in self.apps:
                    raise NotFound("No such document.")
                return JSONResponse(documents[service])

            add_ops_route(
                ops,
                "/openapi/{service}.json",
                service_document,
                summary="A service's OpenAPI document, as this exchange serves it",
                tags=["documentation"],
            )
        install_openapi(ops)
        return ops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        if scope["type"] == "http":
            send = _with_security_headers(send)
            if path in STACK_PATHS:
                # One health for the stack, one metrics registry per process (every service's
                # metrics), one page for every service's API.
                await self.ops(scope, receive, send)
                return
            if path.startswith("/openapi/") and self.settings.api_docs_enabled:
                # Each service's document (`/openapi/<service>.json`), GET and HEAD only.
                await self.ops(scope, receive, send)
                return
        if path == "/console" or path.startswith("/console/"):
            await self.console(scope, receive, send)
            return
        for prefix, app in self._prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                await app(scope, receive, send)
                return
        # Anything else: identity answers, with its 404s.
        await self.apps["identity"](scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with contextlib.AsyncExitStack() as started:
            message = await receive()
            assert message["type"] == "lifespan.startup"
            try:
                for app in self.apps.values():  # identity first: the others check its tokens
                    # Consumers join their groups in the background; all of them are awaited
                    # below, so the groups form at once (~1 s each on Tansu) and not in turn.
                    app.state.runtime.join_later = True
                    await started.enter_async_context(app.router.lifespan_context(app))
                await asyncio.gather(*(app.state.runtime.joined() for app in self.apps.values()))
                console = self.console
                await started.enter_async_context(console.router.lifespan_context(console))
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                raise
            self.ready = True
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
            self.ready = False
            # Leaving the stack stops the services in reverse: consumers drained, outboxes
            # flushed, producers closed.
        await send({"type": "lifespan.shutdown.complete"})

    async def status(self) -> dict[str, Any]:
        """Every service's database and consumers, and the broker."""
        services: dict[str, Any] = {}
        for name, app in self.apps.items():
            runtime = app.state.runtime
            checks: dict[str, str] = {}
            for check_name, check in runtime.checks:
                try:
                    await asyncio.wait_for(check(), 2)
                    checks[check_name] = "ok"
                except Exception as exc:
                    checks[check_name] = type(exc).__name__
            down = [c.name for c in runtime.consumers if not c.running]
            checks["consumers"] = "ok" if not down else "stopped: " + ", ".join(down)
            services[name] = checks
        try:
            await asyncio.wait_for(broker_reachable(self.bootstrap), 3)
            broker = "ok"
        except Exception as exc:
            broker = type(exc).__name__
        ok = (
            self.ready
            and broker == "ok"
            and all(v == "ok" for checks in services.values() for v in checks.values())
        )
        return {"status": "ok" if ok else "unavailable", "broker": broker, "services": services}


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            add_response_headers(message)
        await send(message)

    return wrapped
