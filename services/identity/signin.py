"""People's sign-in over OpenID Connect: discovery, the authorization endpoint with its sign-in
pages (password, then one-time code; enrolment of the second factor when it is missing),
the people's grants at the token endpoint, userinfo, revocation and logout. The protocol is
Authlib's (services.identity.oidc); these endpoints collect the request and keep the browser's
sign-in session."""

import base64
import hmac
import secrets
from collections.abc import Mapping
from typing import Annotated, Any

from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials

from contracts.events import AccessDenied, AccessGranted
from services.common.auth import authenticate
from services.common.crypto import Vault
from services.common.db import transaction
from services.common.deps import Keys, Runtime, from_state
from services.common.errors import Unauthorized
from services.common.models import utcnow
from services.common.runtime import ServiceRuntime
from services.identity import pages, people, service
from services.identity.models import Agency, Person, PersonSession
from services.identity.oidc import Incoming, Issued, Provider, SignedIn, user_info
from services.identity.settings import IdentitySettings
from services.identity.throttle import TokenThrottles, client_key

router = APIRouter(tags=["openid connect"])

Config = Annotated[IdentitySettings, Depends(from_state("settings", IdentitySettings))]
OP = Annotated[Provider, Depends(from_state("provider", Provider))]
SignInThrottles = Annotated[TokenThrottles, Depends(from_state("signin_throttles", TokenThrottles))]

SESSION_COOKIE = "nrm_signin"
CSRF_COOKIE = "nrm_csrf"
# A browser in which a person completed a sign-in (OWASP's device cookie): its failures have a
# throttle bucket of their own, so failures elsewhere under the person's username (someone
# locking them out) do not stop them signing in there.
DEVICE_COOKIE = "nrm_device"
DEVICE_MAX_AGE = 180 * 24 * 3600
_DEVICE_PURPOSE = "nrm-identity-device-cookie"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def incoming(request: Request, form: Mapping[str, Any] | None = None) -> Incoming:
    fields = [(k, v) for k, v in (form or {}).items() if isinstance(v, str)]
    return Incoming(
        method=request.method,
        url=str(request.url),
        headers=request.headers,
        query=list(request.query_params.multi_items()),
        form=fields,
    )


def respond(result: tuple[int, Any, list[tuple[str, str]]]) -> Response:
    status, body, headers = result
    merged = {**_NO_STORE, **dict(headers)}
    if status in (301, 302, 303):
        return RedirectResponse(merged.pop("Location"), status_code=302, headers=merged)
    merged.pop("Content-Type", None)
    return JSONResponse(body, status_code=status, headers=merged)


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get(
    "/.well-known/openid-configuration", summary="OpenID Connect discovery (OpenID Discovery 1.0)"
)
async def discovery(settings: Config) -> dict[str, Any]:
    issuer = settings.auth_issuer.rstrip("/")
    return {
        "issuer": settings.auth_issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "end_session_endpoint": f"{issuer}/oauth/logout",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [service.ALGORITHM],
        "scopes_supported": ["openid", "profile"],
        "claims_supported": ["sub", "preferred_username", "agency", "roles", "amr", "sid"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "ui_locales_supported": list(pages.LANGUAGES),
    }


# The authorization endpoint and its sign-in pages


def _csrf(request: Request) -> str:
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def _device_proof(vault: Vault, username: str, nonce: str) -> str:
    digest = vault.mac(f"{username}\n{nonce}".encode(), purpose=_DEVICE_PURPOSE)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _throttle_key(request: Request, vault: Vault, username: str) -> str:
    """The per-person throttle's key: the browser's own if it holds the person's device cookie
    (names no one: it proves the username without carrying it), else the username's, which
    every other browser shares."""
    nonce, _, proof = request.cookies.get(DEVICE_COOKIE, "").partition(".")
    expected = _device_proof(vault, username, nonce).encode()
    # As bytes: `compare_digest` refuses a str with non-ASCII characters (a forged cookie).
    if nonce and proof and hmac.compare_digest(proof.encode(), expected):
        return f"device:{nonce}"  # no username has a colon
    return username


def _remember_device(response: Response, request: Request, vault: Vault, username: str) -> None:
    nonce = secrets.token_urlsafe(16)
    response.set_cookie(
        DEVICE_COOKIE,
        f"{nonce}.{_device_proof(vault, username, nonce)}",
        max_age=DEVICE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/oauth/",
    )


def _set_cookies(response: Response, request: Request, *, csrf: str, signin: str | None) -> None:
    secure = request.url.scheme == "https"
    path = "/oauth/"
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="lax", secure=secure, path=path)
    if signin is not None:
        response.set_cookie(
            SESSION_COOKIE, signin, httponly=True, samesite="lax", secure=secure, path=path
        )


async def _validate(provider: Provider, request: Request) -> Any:
    """Authlib's checks of the authorization request; the grant, or a response to give."""
    try:
        grant, _ = await provider.call(provider.get_consent_grant, incoming(request), None)
    except OAuth2Error as error:
        status, body, headers = error()
        if status == 302:  # the client and its redirect URI are known: tell the client
            return respond((status, body, headers))
        message = error.description or error.error
        return pages.render(
            request,
            step="error",
            status=400,
            heading=pages.text(request, "error_heading"),
            message=f"{error.error}: {message}",
        )
    return grant


async def _session(
    runtime: ServiceRuntime, request: Request
) -> tuple[PersonSession, Person] | None:
    async with runtime.sessions() as session:
        return await people.current_session(session, request.cookies.get(SESSION_COOKIE))


# What the browser endpoints answer: pages, and redirects back to a registered client.
_PAGE = {"text/html": {"schema": {"type": "string"}}}
_OAUTH_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        }
    }
}
_SIGN_IN: dict[int | str, dict[str, Any]] = {
    200: {"description": "The sign-in page (password, then the one-time code)", "content": _PAGE},
    302: {"description": "Back to the client's redirect URI with a code, or an RFC 6749 error"},
    400: {
        "description": "A page saying the sign-in request cannot be served: an unknown client, a "
        "redirect URI it did not register, a missing or bad parameter (nothing is sent to an "
        "unverified redirect URI)",
        "content": _PAGE,
    },
    429: {"description": "Too many failed sign-ins for this username (a page)", "content": _PAGE},
}
_LOGOUT: dict[int | str, dict[str, Any]] = {
    200: {"description": "A page saying the person is signed out", "content": _PAGE},
    302: {"description": "To the client's registered post-logout redirect URI"},
    400: {"description": "A page saying the logout request is not valid", "content": _PAGE},
}


def _query(name: str, description: str, *, required: bool = False, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string", **schema},
    }


# The OpenID Connect authentication request (Core 1.0 §3.1.2.1) as this provider reads it; Authlib
# reads the query itself, so the parameters are stated here.
_AUTHORIZATION_REQUEST = [
    _query("response_type", "The authorization code flow only", required=True, enum=["code"]),
    _query("client_id", "A registered client", required=True),
    _query("redirect_uri", "One of the client's registered redirect URIs"),
    _query("scope", "Space-separated; `openid` for an ID token"),
    _query("state", "Returned unchanged with the code"),
    _query("nonce", "Returned in the ID token"),
    _query("code_challenge", "PKCE (RFC 7636): BASE64URL(SHA-256(code_verifier))"),
    _query("code_challenge_method", "PKCE: `S256`"),
    _query("prompt", "`login`: ask for the password even within a sign-in session"),
]


@router.get(
    "/oauth/authorize",
    response_class=HTMLResponse,
    responses=_SIGN_IN,
    summary="Authorization endpoint: sign in, then a code",
    openapi_extra={"parameters": _AUTHORIZATION_REQUEST},
)
async def authorize(
    request: Request, runtime: Runtime, provider: OP, settings: Config, vault: Keys
) -> Response:
    grant = await _validate(provider, request)
    if isinstance(grant, Response):
        return grant
    current = await _session(runtime, request)
    csrf = _csrf(request)
    action = str(request.url.path) + "?" + request.url.query
    response: Response
    if current is None or request.query_params.get("prompt") == "login":
        response = pages.render(request, step="password", csrf=csrf, action=action)
    elif current[0].stage == "done":
        return await _issue_code(provider, grant, current)
    elif current[0].stage == "enrol" and not current[1].totp_confirmed:
        # (Enrolled meanwhile, in another browser: then the code is asked for, below; a
        # confirmed secret is never replaced here.)
        response = await _enrol_page(request, runtime, vault, current, csrf, action)
    else:
        response = pages.render(request, step="otp", csrf=csrf, action=action)
    _set_cookies(response, request, csrf=csrf, signin=None)
    return response


async def _enrol_page(
    request: Request,
    runtime: ServiceRuntime,
    vault: Vault,
    current: tuple[PersonSession, Person],
    csrf: str,
    action: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    # Explicit: a step of several sign-in paths, each of which reads and audits on its own.
    async with transaction(runtime.sessions) as session:
        person = await session.get(Person, current[1].id)
        assert person is not None
        if person.totp_confirmed:  # enrolled meanwhile elsewhere: never replaced here
            return pages.render(
                request, step="otp", status=status, error=error, csrf=csrf, action=action
            )
        secret = people.totp_secret(person, vault)
        if secret is None:
            secret = people.begin_enrolment(person, vault)
            session.add(person)
    uri = people.provisioning_uri(person, secret)
    return pages.render(
        request,
        step="enrol",
        status=status,
        heading=pages.text(request, "enrol_heading"),
        error=error,
        csrf=csrf,
        action=action,
        qr=people.qr_svg_data_uri(uri),
        secret=secret,
    )


async def _issue_code(
    provider: Provider, grant: Any, current: tuple[PersonSession, Person]
) -> Response:
    session_row, person = current
    assert session_row.auth_time is not None
    user = SignedIn(person, list(session_row.amr), session_row.auth_time, session_row.id)
    result, _ = await provider.call(
        provider.create_authorization_response, grant.request, user, grant
    )
    return respond(result)


@router.post(
    "/oauth/authorize",
    response_class=HTMLResponse,
    responses=_SIGN_IN,
    summary="The sign-in form's steps (password, one-time code)",
)
async def sign_in(
    request: Request,
    runtime: Runtime,
    provider: OP,
    settings: Config,
    vault: Keys,
    throttles: SignInThrottles,
) -> Response:
    grant = await _validate(provider, request)
    if isinstance(grant, Response):
        return grant
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    action = str(request.url.path) + "?" + request.url.query
    csrf = request.cookies.get(CSRF_COOKIE, "")
    if not csrf or not hmac.compare_digest(csrf, form.get("csrf", "")):
        csrf = secrets.token_urlsafe(24)
        response = pages.render(
            request,
            step="password",
            status=400,
            error=pages.text(request, "expired"),
            csrf=csrf,
            action=action,
        )
        _set_cookies(response, request, csrf=csrf, signin=None)
        return response
    client_id = grant.request.payload.client_id
    if form.get("step") == "password":
        return await _password_step(
            request, runtime, settings, vault, throttles, form, csrf, action, client_id
        )
    current = await _session(runtime, request)
    if current is None or current[0].stage not in ("otp", "enrol"):
        return pages.render(
            request,
            step="password",
            status=400,
            error=pages.text(request, "expired"),
            csrf=csrf,
            action=action,
        )
    return await _code_step(
        request, runtime, provider, vault, throttles, form, csrf, action, client_id, grant, current
    )


async def _throttled(
    request: Request,
    runtime: ServiceRuntime,
    throttles: TokenThrottles,
    *,
    key: str,
    username: str,
    client_id: str,
    step: str,
    csrf: str,
    action: str,
) -> Response | None:
    wait = throttles.retry_after(client_id=key, source=_source(request))
    if wait is None:
        return None
    await runtime.access_audit.auth_failed(
        reason="sign-in throttled after repeated failures",
        client_id=client_id,
        actor=username,
        path=request.url.path,
        source=_source(request),
    )
    return pages.render(
        request,
        step=step,
        status=429,
        error=pages.text(request, "throttled", seconds=wait),
        csrf=csrf,
        action=action,
        username=username if step == "password" else "",
        headers={"Retry-After": str(wait)},
    )


async def _password_step(
    request: Request,
    runtime: ServiceRuntime,
    settings: IdentitySettings,
    vault: Vault,
    throttles: TokenThrottles,
    form: dict[str, str],
    csrf: str,
    action: str,
    client_id: str,
) -> Response:
    username = form.get("username", "").strip()[:100]
    password = form.get("password", "")[:256]
    key = _throttle_key(request, vault, username)
    refused = await _throttled(
        request,
        runtime,
        throttles,
        key=key,
        username=username,
        client_id=client_id,
        step="password",
        csrf=csrf,
        action=action,
    )
    if refused is not None:
        return refused
    async with runtime.sessions() as session:
        person = await people.by_username(session, username)
        agency = await session.get(Agency, person.agency) if person is not None else None
    ok = await people.check_password(person, password)
    if not ok or person is None or person.disabled or (agency is not None and agency.disabled):
        throttles.failed(client_id=key, source=_source(request))
        await runtime.access_audit.auth_failed(
            reason="sign-in: wrong username or password"
            if not ok or person is None
            else "sign-in: person or agency disabled",
            client_id=client_id,
            actor=username,
            path=request.url.path,
            source=_source(request),
        )
        return pages.render(
            request,
            step="password",
            status=401,
            error=pages.text(request, "wrong_password"),
            csrf=csrf,
            action=action,
            username=username,
        )
    if person.totp_confirmed:
        stage = "otp"
    elif people.needs_second_factor(person):
        stage = "enrol"
    else:
        stage = "done"
    # Explicit: the sign-in session commits before `_signed_in` audits it in its own transaction.
    async with transaction(runtime.sessions) as session:
        cookie, row = await people.start_session(
            session, person=person, stage=stage, ttl=settings.session_ttl_seconds
        )
        if stage == "done":
            row.amr, row.auth_time = ["pwd"], utcnow()
    if stage == "done":
        await _signed_in(runtime, request, person, client_id, ["pwd"])
    response = RedirectResponse(action, status_code=303)
    _set_cookies(response, request, csrf=csrf, signin=cookie)
    if stage == "done":
        _remember_device(response, request, vault, person.username)
    return response


async def _code_step(
    request: Request,
    runtime: ServiceRuntime,
    provider: Provider,
    vault: Vault,
    throttles: TokenThrottles,
    form: dict[str, str],
    csrf: str,
    action: str,
    client_id: str,
    grant: Any,
    current: tuple[PersonSession, Person],
) -> Response:
    session_row, person = current
    enrolling = session_row.stage == "enrol" and not person.totp_confirmed
    key = _throttle_key(request, vault, person.username)
    refused = await _throttled(
        request,
        runtime,
        throttles,
        key=key,
        username=person.username,
        client_id=client_id,
        step=session_row.stage,
        csrf=csrf,
        action=action,
    )
    if refused is not None:
        return refused
    code = form.get("otp", "")[:20]
    codes: list[str] = []
    # Explicit: the code's use commits before a failure is audited and throttled (own writes).
    async with transaction(runtime.sessions) as session:
        fresh = await session.get(Person, person.id, with_for_update=True)
        assert fresh is not None
        amr: list[str] | None = None
        enrolling = enrolling and not fresh.totp_confirmed
        if people.check_totp(fresh, code, vault):
            amr = ["pwd", "otp", "mfa"]
            if enrolling:
                fresh.totp_confirmed = True
                codes = people.new_recovery_codes(fresh)
        elif not enrolling and people.use_recovery_code(fresh, code):
            amr = ["pwd", "mfa"]
        session.add(fresh)
        if amr is not None:
            live = await session.get(PersonSession, session_row.id)
            assert live is not None
            live.stage, live.amr, live.auth_time = "done", amr, utcnow()
            session.add(live)
    if amr is None:
        throttles.failed(client_id=key, source=_source(request))
        await runtime.access_audit.auth_failed(
            reason="sign-in: wrong or replayed one-time code",
            client_id=client_id,
            actor=person.username,
            path=request.url.path,
            source=_source(request),
        )
        if enrolling:
            return await _enrol_page(
                request,
                runtime,
                vault,
                current,
                csrf,
                action,
                error=pages.text(request, "wrong_code"),
                status=401,
            )
        return pages.render(
            request,
            step="otp",
            status=401,
            error=pages.text(request, "wrong_code"),
            csrf=csrf,
            action=action,
        )
    await _signed_in(runtime, request, fresh, client_id, amr)
    response: Response
    if codes:
        # Shown once; "Continue" comes back here and, signed in, gets the code.
        response = pages.render(
            request,
            step="recovery",
            heading=pages.text(request, "recovery_heading"),
            codes=codes,
            action=action,
        )
    else:
        session_row.stage, session_row.amr, session_row.auth_time = "done", amr, utcnow()
        response = await _issue_code(provider, grant, (session_row, fresh))
    _remember_device(response, request, vault, fresh.username)
    return response


async def _signed_in(
    runtime: ServiceRuntime, request: Request, person: Person, client_id: str, amr: list[str]
) -> None:
    await runtime.access_audit.emit(
        AccessGranted(
            action="person.sign_in",
            resource_type="person",
            resource_id=person.id,
            agency=person.agency,
            client_id=client_id,
            actor=person.username,
        ),
        agency=person.agency,
    )


# The people's grants at the token endpoint (called by api.token)


async def people_token(
    request: Request,
    *,
    form: dict[str, str],
    client_id: str | None,
    runtime: ServiceRuntime,
    provider: Provider,
    throttles: TokenThrottles,
) -> Response:
    source = _source(request)
    result, issued = await provider.call(provider.create_token_response, incoming(request, form))
    status, body, _ = result
    if status == 401 or (isinstance(body, dict) and body.get("error") == "invalid_client"):
        throttles.failed(
            client_id=None if client_id is None else client_key(client_id, source), source=source
        )
        await runtime.access_audit.auth_failed(
            reason="client authentication failed",
            client_id=client_id,
            path=request.url.path,
            source=source,
        )
    await _audit_issued(runtime, issued, grant_type=form.get("grant_type", ""))
    return respond(result)


async def _audit_issued(runtime: ServiceRuntime, issued: Issued, *, grant_type: str) -> None:
    for row in issued.reuse:
        async with runtime.sessions() as session:
            person = await session.get(Person, row.person_id)
        await runtime.access_audit.emit(
            AccessDenied(
                action="token.refresh",
                resource_type="refresh_token_family",
                resource_id=row.family_id[:64],
                agency=person.agency if person else None,
                client_id=row.client_id,
                actor=person.username if person else None,
                reason="a rotated refresh token was used again: its family is revoked",
            ),
            agency=person.agency if person else None,
        )
    for claims in issued.tokens:
        await runtime.access_audit.emit(
            AccessGranted(
                action=f"token.issue.{grant_type}",
                resource_type="token",
                resource_id=claims["jti"],
                agency=claims["agency"],
                client_id=claims["client_id"],
                actor=claims["preferred_username"],
            ),
            agency=claims["agency"],
        )


# Userinfo, revocation, logout


@router.api_route(
    "/oauth/userinfo",
    methods=["GET", "POST"],
    responses={401: {"description": "Not a valid person's token (`WWW-Authenticate`)"}},
    summary="Claims about the signed-in person",
)
async def userinfo(request: Request, runtime: Runtime) -> JSONResponse:
    header = request.headers.get("authorization", "")
    credentials = None
    if header.lower().startswith("bearer "):
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=header[7:].strip())
    principal = await authenticate(request, credentials)
    if principal.person is None:
        raise Unauthorized(
            "not a person's token",
            headers={"WWW-Authenticate": 'Bearer realm="nrm", error="invalid_token"'},
        )
    async with runtime.sessions() as session:
        person = await session.get(Person, principal.subject)
    if person is None or person.disabled:
        raise Unauthorized(
            "person unknown or disabled",
            headers={"WWW-Authenticate": 'Bearer realm="nrm", error="invalid_token"'},
        )
    return JSONResponse(dict(user_info(person)), headers=_NO_STORE)


@router.post(
    "/oauth/revoke",
    responses={
        400: {"description": "RFC 6749 §5.2 error (no token given)", "content": _OAUTH_ERROR},
        401: {
            "description": "`invalid_client`: client authentication failed",
            "content": _OAUTH_ERROR,
        },
    },
    summary="Revoke a refresh token and its family (RFC 7009)",
)
async def revoke(request: Request, provider: OP) -> Response:
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    result, _ = await provider.call(
        provider.create_endpoint_response, "revocation", incoming(request, form)
    )
    return respond(result)


@router.api_route(
    "/oauth/logout",
    methods=["GET", "POST"],
    response_class=HTMLResponse,
    responses=_LOGOUT,
    summary="End the sign-in session and its refresh tokens (RP-initiated logout)",
)
async def logout(request: Request, runtime: Runtime, provider: OP) -> Response:
    form: dict[str, str] = {}
    if request.method == "POST":
        raw = await request.form()
        form = {k: v for k, v in raw.items() if isinstance(v, str)}
    try:
        validated, _ = await provider.call(
            provider.validate_endpoint_request, "end_session", incoming(request, form)
        )
    except OAuth2Error as error:
        return pages.render(
            request,
            step="error",
            status=400,
            heading=pages.text(request, "error_heading"),
            message=f"{error.error}: {error.description or ''}",
        )
    sids = set()
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        sids.add(people.session_id(cookie))
    claims = validated.id_token_claims or {}
    if isinstance(claims.get("sid"), str):
        sids.add(claims["sid"])
    # Explicit: the form is read and checked by the provider (on sessions of its own) before
    # the write lock is taken.
    async with transaction(runtime.sessions) as session:
        for sid in sids:
            row = await session.get(PersonSession, sid)
            if row is None or row.ended_at is not None:
                continue
            if claims and claims.get("sub") != row.person_id:
                continue  # an ID token names one person's session only
            await people.end_session(session, session_row=row)
    response: Response
    if validated.redirect_uri:
        response = RedirectResponse(validated.redirect_uri, status_code=302, headers=_NO_STORE)
    else:
        response = pages.render(
            request,
            step="signed_out",
            heading=pages.text(request, "signed_out_heading"),
            message=pages.text(request, "signed_out"),
        )
    response.delete_cookie(SESSION_COOKIE, path="/oauth/")
    return response
