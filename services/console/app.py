"""The console: the web screen people use, an OpenID Connect client of identity and a
backend-for-frontend over the services' public APIs. It has no database and no consumers."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from authlib.integrations.starlette_client import OAuth
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from services.console import admin, api, erasure, pages
from services.console.service import (
    Backend,
    SessionMiddleware,
    SessionStore,
    SignedOut,
    agency_languages,
    agency_types,
    client_secret,
)
from services.console.settings import ConsoleSettings


def _oauth_factory(settings: ConsoleSettings) -> Callable[[], OAuth]:
    """Authlib's Starlette client, registered at first use (the secret may be written by
    identity only as the stack starts)."""
    registry: list[OAuth] = []

    def get() -> OAuth:
        if not registry:
            oauth = OAuth()
            oauth.register(
                "identity",
                client_id=settings.client_id,
                client_secret=client_secret(settings),
                server_metadata_url=settings.url_for("/.well-known/openid-configuration"),
                client_kwargs={"scope": "openid profile", "code_challenge_method": "S256"},
            )
            registry.append(oauth)
        return registry[0]

    return get


def create_app(settings: ConsoleSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            base_url=settings.api_base, timeout=settings.api_timeout_seconds
        ) as http:
            app.state.backend = Backend(settings, http)
            yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.oauth = _oauth_factory(settings)
    app.state.languages = agency_languages(settings.config_dir)
    app.state.agency_types = agency_types(settings.config_dir)
    app.add_middleware(
        SessionMiddleware,
        store=SessionStore(idle_seconds=settings.idle_timeout_seconds),
        secure=settings.secure_cookies,
    )
    app.include_router(api.router)
    app.include_router(admin.router)
    app.include_router(erasure.router)

    @app.get("/healthz", include_in_schema=False)
    @app.get("/readyz", include_in_schema=False)
    async def _health() -> Response:
        """Served alone (`nrm serve console`): up once started (no database, no consumers)."""
        return Response(b'{"status": "ok"}', media_type="application/json")

    app.mount(
        "/console/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="static",
    )

    @app.exception_handler(api.NeedsSignIn)
    async def _sign_in(request: Request, exc: api.NeedsSignIn) -> Response:
        return RedirectResponse(f"/console/login?next={exc.next_path}", status_code=303)

    @app.exception_handler(SignedOut)
    async def _signed_out(request: Request, exc: SignedOut) -> Response:
        request.session.clear()
        return RedirectResponse("/console/", status_code=303)

    @app.exception_handler(api.NotFound)
    async def _not_found(request: Request, exc: api.NotFound) -> Response:
        t = pages.TEXT[pages.language(request)]
        return pages.render(
            request,
            "message.html.j2",
            status=404,
            heading=t["not_found"],
            message=t["not_found_text"],
        )

    @app.exception_handler(404)
    async def _no_page(request: Request, exc: Exception) -> Response:
        return await _not_found(request, api.NotFound())

    @app.exception_handler(api.Forbidden)
    async def _forbidden(request: Request, exc: api.Forbidden) -> Response:
        t = pages.TEXT[pages.language(request)]
        return pages.render(
            request,
            "message.html.j2",
            status=403,
            heading=t["forbidden"],
            message=t["forbidden_text"],
        )

    @app.exception_handler(api.CsrfRefused)
    async def _csrf(request: Request, exc: api.CsrfRefused) -> Response:
        t = pages.TEXT[pages.language(request)]
        return pages.render(
            request, "message.html.j2", status=403, heading=t["forbidden"], message=t["expired"]
        )

    @app.exception_handler(RequestValidationError)
    async def _bad_form(request: Request, exc: RequestValidationError) -> Response:
        """A form post the console's own pages never send (a field missing or too long): a
        page naming the fields, not FastAPI's JSON, and never the values."""
        t = pages.TEXT[pages.language(request)]
        fields = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
        return pages.render(
            request,
            "message.html.j2",
            status=422,
            heading=t["bad_form"],
            message=f"{t['bad_form_text']} {', '.join(fields)}",
        )

    return app
