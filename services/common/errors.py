"""One error base class, mapped centrally to RFC 9457 problem+json."""

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_JSON = "application/problem+json"


class NRMError(Exception):
    """Base of every error a service raises on purpose; subclasses fix the status."""

    status: int = 400
    title: str | None = None

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        self.extra = extra


class BadRequest(NRMError):
    status = 400


class Unauthorized(NRMError):
    status = 401


class NotFound(NRMError):
    """Unknown, or not the caller's to know about (never 403: existence is not confirmed).

    Raised for an authenticated caller, it is recorded as `access.denied` by the app's handler
    (services.common.access), unless `audited` says the raiser recorded it already."""

    status = 404

    def __init__(self, detail: str, *, audited: bool = False, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.audited = audited


class Conflict(NRMError):
    status = 409


class Gone(NRMError):
    """It existed and was deliberately destroyed (an erased referral, to those who erase)."""

    status = 410


class PayloadTooLarge(NRMError):
    status = 413


class UnsupportedMediaType(NRMError):
    status = 415


class UnprocessableContent(NRMError):
    status = 422
    title = "Unprocessable Content"


class ServiceUnavailable(NRMError):
    status = 503


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Field paths and messages from pydantic errors, without echoing submitted values back."""
    out = []
    for err in errors:
        loc = [p for p in err["loc"] if p != "body"]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # pydantic reports a bad discriminator at the union itself; name the field.
            loc.append(str(err.get("ctx", {}).get("discriminator", "")).strip("'"))
        out.append(
            {
                "path": "/".join(str(p) for p in loc) or "/",
                "type": err["type"],
                "message": err["msg"],
            }
        )
    return out


def allowed_methods(request: Request) -> str:
    """Every method some route of the app answers on the request's path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NRMError)
    async def _nrm_error(request: Request, exc: NRMError) -> JSONResponse:
        return problem(
            exc.status,
            exc.detail,
            title=exc.title,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(
            422,
            "The request does not match the schema.",
            title="Unprocessable Content",  # RFC 9110 name; Python 3.11 still says "Entity"
            instance=request.url.path,
            errors=field_errors(exc.errors()),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path only; a path
            # with one route per method (GET and POST /v1/referrals) supports them all.
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem(exc.status_code, detail, instance=request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged by the server with the traceback; the client learns nothing internal.
        return problem(500, "Internal error.", instance=request.url.path)
