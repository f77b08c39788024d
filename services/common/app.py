"""App factory: problem+json errors, `/healthz`, `/readyz`, `/metrics`, request metrics,
security headers, and the API description (`/openapi/<service>.json`, `/docs`)."""

import hmac
import html
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.vocabulary import load_code_lists
from services.common.access import install_refusal_audit
from services.common.body import BodyLimit
from services.common.errors import install_error_handlers, problem
from services.common.openapi import install as install_openapi
from services.common.openapi import problem_response
from services.common.settings import Settings
from services.common.tracing import TraceMiddleware

ReadinessCheck = tuple[str, Callable[[], Awaitable[None]]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

REQUESTS = Counter("nrm_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "nrm_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


# On every response unless the endpoint set its own: nothing is sniffed, framed, or told where
# the user came from. `default-src 'none'` suits JSON and the script-free docs page alike.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)


def add_response_headers(message: MutableMapping[str, Any]) -> None:
    """Complete an `http.response.start` message with the security headers and `no-store`."""
    headers = message.setdefault("headers", [])
    present = {k.lower() for k, _ in headers}
    event_stream = any(
        k.lower() == b"content-type" and v.startswith(b"text/event-stream") for k, v in headers
    )
    if event_stream:
        # FastAPI says `no-cache` on an event stream; the inbox's carries case data, which no
        # intermediary may keep: one `no-store` instead.
        headers[:] = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
        present.discard(b"cache-control")
    if b"cache-control" not in present:
        # Responses may carry case data; no intermediary should keep them.
        headers.append((b"cache-control", b"no-store"))
    headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)


class MetricsMiddleware:
    """Counts and times requests by route template (never by raw path: ids are unbounded), and
    adds `Cache-Control: no-store` and the security headers unless the endpoint set them.
    Plain ASGI: Starlette's BaseHTTPMiddleware costs a task group per request."""

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
                add_response_headers(message)
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            # The router records the matched route in the shared scope dict.
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - start)


def database_check(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def metrics_response(request: Request, settings: Settings) -> Response:
    """Prometheus metrics, or 404 when turned off, or 401 without the configured token."""
    if not settings.metrics_enabled:
        return problem(404, "Not found.")
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return problem(
                401, "A metrics token is required.", headers={"WWW-Authenticate": "Bearer"}
            )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def docs_page(documents: dict[str, dict[str, Any]]) -> HTMLResponse:
    """One page listing every operation of these services' OpenAPI documents, with links to the
    documents. Server-rendered and script-free: nothing loads from a CDN, the strict CSP holds,
    and integrators open the JSON in the tools they already use."""
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<title>NRM Exchange API</title></head><body><h1>NRM Exchange API</h1>",
        "<p>Each service's OpenAPI document: ",
    ]
    parts.append(
        ", ".join(
            f'<a href="/openapi/{html.escape(name)}.json">{html.escape(name)}</a>'
            for name in documents
        )
        + ".</p>"
    )
    for name, doc in documents.items():
        title = html.escape(str(doc.get("info", {}).get("title", name)))
        parts.append(f'<h2 id="{html.escape(name)}">{title}</h2>')
        parts.append("<table><tr><th>Method</th><th>Path</th><th>What</th></tr>")
        for path, operations in doc.get("paths", {}).items():
            for method, op in operations.items():
                summary = html.escape(str(op.get("summary", "")))
                parts.append(
                    f"<tr><td>{html.escape(method.upper())}</td>"
                    f"<td><code>{html.escape(path)}</code></td><td>{summary}</td></tr>"
                )
        parts.append("</table>")
    parts.append("</body></html>")
    return HTMLResponse("".join(parts))


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    failed: dict[str, str] = Field(description="Each failed check and the error it raised")


# GET and HEAD only (405 with `Allow` otherwise); HEAD answers the same without a body.
OPS_METHODS = ["GET", "HEAD"]
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
    },
    401: problem_response(401, "`NRM_METRICS_TOKEN` is set and the bearer token is not it"),
    404: problem_response(404, "Metrics are turned off (`NRM_METRICS_ENABLED=false`)"),
}


def add_ops_route(router: APIRouter | FastAPI, path: str, endpoint: Any, **options: Any) -> None:
    """`endpoint` at `path` for GET and HEAD: one route each, so that each operation of the
    document has its own id (the 405's `Allow` names both: services.common.errors)."""
    for method in OPS_METHODS:
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            operation_id=f"{endpoint.__name__.strip('_')}_{method.lower()}",
            **options,
        )


def ops_router(checks: Sequence[ReadinessCheck], settings: Settings) -> APIRouter:
    router = APIRouter(tags=["operations"])

    async def healthz() -> Health:
        return Health(status="ok")

    async def readyz() -> JSONResponse:
        failed: dict[str, str] = {}
        for name, check in checks:
            try:
                await check()
            except Exception as exc:
                failed[name] = type(exc).__name__
        body = {"status": "ready" if not failed else "not ready", "failed": failed}
        return JSONResponse(body, status_code=200 if not failed else 503)

    async def metrics(request: Request) -> Response:
        return metrics_response(request, settings)

    add_ops_route(router, "/healthz", healthz, summary="Liveness: the process serves requests")
    add_ops_route(
        router,
        "/readyz",
        readyz,
        summary="Readiness: every dependency answers",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency does not answer"}},
    )
    add_ops_route(
        router,
        "/metrics",
        metrics,
        summary="Prometheus metrics",
        response_class=Response,
        responses=METRICS_RESPONSES,
        include_in_schema=settings.metrics_enabled,
    )
    return router


def create_app(
    *,
    title: str,
    service: str,
    settings: Settings,
    routers: Sequence[APIRouter] = (),
    checks: Sequence[ReadinessCheck] = (),
    lifespan: Lifespan | None = None,
    version: str = "1",
) -> FastAPI:
    """A service's app. Its OpenAPI document is `/openapi/<service>.json` and `/docs` lists its
    operations, unless `settings.api_docs_enabled` is off."""
    load_code_lists()
    # FastAPI's OpenTelemetry hook is off: nothing here exports OTel (metrics are Prometheus at
    # /metrics), and its per-request provider check costs ~8% of a submission's CPU.
    telemetry: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
    docs = settings.api_docs_enabled
    app = FastAPI(
        title=title,
        version=version,
        lifespan=lifespan,
        telemetry=telemetry,
        openapi_url=f"/openapi/{service}.json" if docs else None,
        docs_url=None,  # FastAPI's pages load Swagger UI / ReDoc from a CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    install_refusal_audit(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(TraceMiddleware, service=service)  # outermost: everything sees the trace
    app.include_router(ops_router(checks, settings))
    if docs:

        @app.get("/docs", include_in_schema=False)
        async def api_docs() -> HTMLResponse:
            return docs_page({service: app.openapi()})

    for router in routers:
        app.include_router(router)
    install_openapi(app, agencies=settings.configured_agencies())
    return app
