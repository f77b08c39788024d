"""Every domain error reaches the client through the one mapping in services.common.errors:
problem+json with its declared status, or, for the token endpoint, RFC 6749's JSON."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.cloudevents import InvalidEvent
from services.common.auth import InvalidToken
from services.common.crypto import SealError
from services.common.errors import install_error_handlers
from services.identity.service import OAuthError
from services.notify.channels import TargetRefused
from services.router.policy import PolicyError, Problem

PROBLEM = "application/problem+json"

CASES: list[tuple[str, Exception, int, str, dict[str, Any], dict[str, str]]] = [
    (
        "oauth-invalid-client",
        OAuthError("invalid_client", "Client authentication failed.", status=401),
        401,
        "application/json",
        {"error": "invalid_client", "error_description": "Client authentication failed."},
        {"www-authenticate": 'Basic realm="nrm"', "cache-control": "no-store"},
    ),
    (
        "oauth-throttled",
        OAuthError(
            "temporarily_unavailable", "Retry in 5 s.", status=429, headers={"Retry-After": "5"}
        ),
        429,
        "application/json",
        {"error": "temporarily_unavailable", "error_description": "Retry in 5 s."},
        {"retry-after": "5", "pragma": "no-cache"},
    ),
    (
        "invalid-token",
        InvalidToken("bad signature", headers={"WWW-Authenticate": 'Bearer realm="nrm"'}),
        401,
        PROBLEM,
        {
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "bad signature",
            "instance": "/raise",
        },
        {"www-authenticate": 'Bearer realm="nrm"'},
    ),
    (
        "target-refused",
        TargetRefused("address 10.0.0.1 is not public"),
        422,
        PROBLEM,
        {
            "type": "about:blank",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": "The webhook URL is not allowed.",
            "instance": "/raise",
            "errors": [
                {"path": "url", "type": "url_refused", "message": "address 10.0.0.1 is not public"}
            ],
        },
        {},
    ),
    (
        "policy-error",
        PolicyError(
            [Problem("routing.yaml", 12, "rules.0.to", "unknown agency 'gpx'")],
            in_force="sha256:ab",
        ),
        422,
        PROBLEM,
        {
            "type": "about:blank",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": "The policy file was not loaded; version sha256:ab stays in force.",
            "instance": "/raise",
            "errors": [
                {
                    "path": "rules.0.to",
                    "line": 12,
                    "type": "policy",
                    "message": "routing.yaml:12: rules.0.to: unknown agency 'gpx'",
                }
            ],
        },
        {},
    ),
    (
        "seal-error-leaks-nothing",
        SealError("master key 'k9' is not configured"),
        500,
        PROBLEM,
        {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "Internal error.",
            "instance": "/raise",
        },
        {},
    ),
    (
        "invalid-event",
        InvalidEvent("record has no value"),
        422,
        PROBLEM,
        {
            "type": "about:blank",
            "title": "Unprocessable Content",
            "status": 422,
            "detail": "Not a valid CloudEvent: record has no value",
            "instance": "/raise",
        },
        {},
    ),
]


@pytest.mark.parametrize(
    ("error", "status", "media_type", "body", "headers"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_one_mapping_for_every_domain_error(
    error: Exception, status: int, media_type: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise")
    async def fail() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/raise")
    assert (r.status_code, r.headers["content-type"], r.json()) == (status, media_type, body)
    assert {k: r.headers.get(k) for k in headers} == headers
