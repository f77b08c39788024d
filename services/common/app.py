"""App factory: problem+json errors, `/healthz`, `/readyz`, `/metrics`, request metrics."""

import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.vocabulary import load_code_lists
from services.common.access import install_refusal_audit
from services.common.errors import install_error_handlers

ReadinessCheck = tuple[str, Callable[[], Awaitable[None]]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

REQUESTS = Counter("nrm_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "nrm_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class MetricsMiddleware:
    """Counts and times requests by route template (never by raw path: ids are unbounded), and
    marks responses `Cache-Control: no-store` unless the endpoint said otherwise. Plain ASGI:
    Starlette's BaseHTTPMiddleware costs a task group per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def _send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    # Responses may carry case data; no intermediary should keep them.
                    headers.append((b"cache-control", b"no-store"))
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            # The router records the matched route in the shared scope dict.
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - start)


def from_state(attr: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency returning `request.app.state.<attr>`, which the service's app set up."""

    async def get(request: Request) -> Any:  # async: a sync dependency costs a thread hop
        return getattr(request.app.state, attr)

    return get


def database_check(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def ops_router(checks: Sequence[ReadinessCheck]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: every dependency answers")
    async def readyz() -> JSONResponse:
        failed: dict[str, str] = {}
        for name, check in checks:
            try:
                await check()
            except Exception as exc:
                failed[name] = type(exc).__name__
        body = {"status": "ready" if not failed else "not ready", "failed": failed}
        return JSONResponse(body, status_code=200 if not failed else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def create_app(
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    checks: Sequence[ReadinessCheck] = (),
    lifespan: Lifespan | None = None,
    version: str = "1",
) -> FastAPI:
    load_code_lists()
    # FastAPI's OpenTelemetry hook is off: nothing here exports OTel (metrics are Prometheus at
    # /metrics), and its per-request provider check costs ~8% of a submission's CPU.
    telemetry: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(title=title, version=version, lifespan=lifespan, telemetry=telemetry)
    install_error_handlers(app)
    install_refusal_audit(app)
    app.add_middleware(MetricsMiddleware)
    app.include_router(ops_router(checks))
    for router in routers:
        app.include_router(router)

    return app
