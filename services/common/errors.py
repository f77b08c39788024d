"""One error base class, mapped centrally to RFC 9457 problem+json."""

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from contracts.cloudevents import InvalidEvent

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


class NRMError(Exception):
    """Base of every error a service raises on purpose. The class declares the status, title
    and problem type; `detail` is what the client may read (`str(exc)`, the message, may say
    more for the logs). `install_error_handlers` maps every subclass to one response."""

    status: int = 400  # an instance may narrow it (OAuthError: the RFC's several statuses)
    title: ClassVar[str | None] = None  # None: the status's reason phrase
    type: ClassVar[str] = "about:blank"
    media_type: ClassVar[str] = PROBLEM_JSON

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.detail = message if detail is None else detail
        self.headers = headers
        self.extra = extra

    def body(self, *, instance: str | None) -> dict[str, Any]:
        """The response body: RFC 9457 problem details, plus the subclass's `extra` members."""
        return problem_body(
            self.status,
            self.detail,
            title=self.title,
            type=self.type,
            instance=instance,
            **self.extra,
        )


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
    title = "Unprocessable Content"  # RFC 9110 name; Python 3.11 still says "Entity"


class ServiceUnavailable(NRMError):
    status = 503


class InternalError(NRMError):
    """A fault of ours: the message is for the log only; the client learns nothing internal."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message, detail="Internal error.")


def problem_body(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    type: str = "about:blank",
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response for refusals outside an endpoint's exception flow."""
    body = problem_body(status, detail, title=title, instance=instance, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(request: Request, exc: NRMError) -> JSONResponse:
    """The one mapping from a domain error to its response."""
    if exc.status >= 500:
        log.error("%s: %s", type(exc).__name__, exc, exc_info=exc)
    return JSONResponse(
        exc.body(instance=request.url.path),
        status_code=exc.status,
        media_type=exc.media_type,
        headers=exc.headers,
    )


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
        return error_response(request, exc)

    @app.exception_handler(InvalidEvent)
    async def _invalid_event(request: Request, exc: InvalidEvent) -> JSONResponse:
        # contracts imports no service code, so its one error is mapped here.
        return error_response(request, UnprocessableContent(f"Not a valid CloudEvent: {exc}"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = UnprocessableContent(
            "The request does not match the schema.", errors=field_errors(exc.errors())
        )
        return error_response(request, error)

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
