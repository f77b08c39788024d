"""Identity endpoints: OAuth2 token, discovery, JWKS, administration."""

import asyncio
import base64
import binascii
import math
import time
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events import AccessGranted
from contracts.referrals import Agency
from contracts.vocabulary import Role
from services.common.auth import Principal, require
from services.common.body import json_media
from services.common.deps import Keys, ReadSession, Runtime, WriteSession, from_state
from services.common.permissions import Action
from services.identity import people, service, signin
from services.identity.models import Client
from services.identity.oidc import Provider
from services.identity.schemas import (
    AgencyList,
    AgencyOut,
    ClientIn,
    ClientList,
    ClientOut,
    ClientWithSecret,
    KeyOut,
    PersonIn,
    PersonList,
    PersonOut,
    PersonReset,
    PersonWithPassword,
)
from services.identity.settings import IdentitySettings
from services.identity.throttle import TokenThrottles, client_key

router = APIRouter()
admin = APIRouter(prefix="/v1/admin", tags=["administration"], dependencies=[Depends(json_media)])

AgencyAdmin = Annotated[Principal, Depends(require(Action.AGENCY_ADMIN))]
ClientAdmin = Annotated[Principal, Depends(require(Action.CLIENT_ADMIN))]
KeyAdmin = Annotated[Principal, Depends(require(Action.KEY_ADMIN))]


Config = Annotated[IdentitySettings, Depends(from_state("settings", IdentitySettings))]
Throttles = Annotated[TokenThrottles, Depends(from_state("throttles", TokenThrottles))]
OP = Annotated[Provider, Depends(from_state("provider", Provider))]
PersonAdmin = Annotated[Principal, Depends(require(Action.PERSON_ADMIN))]
PEOPLE_GRANTS = ("authorization_code", "refresh_token")

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    """(client_id, secret) from HTTP Basic (RFC 6749 §2.3.1) or the form body."""
    header = request.headers.get("authorization", "")
    in_form = "client_secret" in form
    if header.lower().startswith("basic "):
        if in_form:
            raise service.OAuthError("invalid_request", "Use one client authentication method.")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            client_id, secret = decoded.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise service.OAuthError(
                "invalid_client", "Malformed Basic credentials.", status=401
            ) from None
        return unquote(client_id), unquote(secret)
    if in_form and form.get("client_id"):
        return form["client_id"], form["client_secret"]
    raise service.OAuthError("invalid_client", "Client authentication required.", status=401)


def _throttled(retry_after: int) -> service.OAuthError:
    # RFC 6749 has no code for this; `temporarily_unavailable` is its nearest (§4.1.2.1).
    return service.OAuthError(
        "temporarily_unavailable",
        f"Too many failed attempts; retry in {retry_after} s.",
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


_OAUTH_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "unauthorized_client",
                "unsupported_grant_type",
                "invalid_scope",
                "temporarily_unavailable",
            ],
        },
        "error_description": {"type": "string"},
    },
}
_TOKEN_FORM = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {
            "type": "string",
            "enum": ["client_credentials", "authorization_code", "refresh_token"],
        },
        "scope": {"type": "string", "description": "Roles to ask for, space-separated"},
        "client_id": {"type": "string", "description": "With `client_secret`, instead of Basic"},
        "client_secret": {"type": "string"},
        "code": {"type": "string", "description": "`authorization_code`: the code"},
        "redirect_uri": {"type": "string", "description": "`authorization_code`: as authorized"},
        "code_verifier": {"type": "string", "description": "`authorization_code`: PKCE"},
        "refresh_token": {"type": "string", "description": "`refresh_token`: the token"},
    },
}
_TOKEN_DOCS: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": _TOKEN_FORM}},
    },
}
_TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An access token (RFC 9068 JWT); for people also `id_token` and "
        "`refresh_token`",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["access_token", "token_type", "expires_in"],
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"type": "string", "enum": ["Bearer"]},
                        "expires_in": {"type": "integer"},
                        "scope": {"type": "string"},
                        "refresh_token": {"type": "string"},
                        "id_token": {"type": "string"},
                    },
                }
            }
        },
    },
    400: {
        "description": "RFC 6749 §5.2 error (not form-encoded, no or unknown grant type, "
        "a bad code or refresh token, a scope not granted)",
        "content": {"application/json": {"schema": _OAUTH_ERROR}},
    },
    401: {
        "description": "`invalid_client`: client authentication failed (`WWW-Authenticate`)",
        "content": {"application/json": {"schema": _OAUTH_ERROR}},
    },
    429: {
        "description": "`temporarily_unavailable`: too many failed attempts from this client "
        "or address (`Retry-After`)",
        "content": {"application/json": {"schema": _OAUTH_ERROR}},
    },
}


@router.post(
    "/oauth/token",
    tags=["oauth"],
    summary="OAuth2 token: client credentials for systems; authorization code and refresh token"
    " for people (OpenID Connect)",
    responses=_TOKEN_RESPONSES,
    openapi_extra=_TOKEN_DOCS,
)
async def token(
    request: Request,
    runtime: Runtime,
    settings: Config,
    vault: Keys,
    throttles: Throttles,
    provider: OP,
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise service.OAuthError(
            "invalid_request", "Send application/x-www-form-urlencoded parameters."
        )
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    source = request.client.host if request.client else "unknown"
    client_id: str | None = None
    try:
        client_id, secret = _client_credentials(request, form)
        client_id = client_id[:100]  # longer ids do not exist; keep the throttle's keys small
        wait = throttles.retry_after(client_id=client_key(client_id, source), source=source)
        if wait is not None:
            await runtime.access_audit.auth_failed(
                reason="throttled after repeated failures",
                client_id=client_id,
                path=request.url.path,
                source=source,
            )
            raise _throttled(wait)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise service.OAuthError("invalid_request", "grant_type is required.")
        if grant_type in PEOPLE_GRANTS:
            return await signin.people_token(
                request,
                form=form,
                client_id=client_id,
                runtime=runtime,
                provider=provider,
                throttles=throttles,
            )
        if grant_type != "client_credentials":
            raise service.OAuthError(
                "unsupported_grant_type",
                "Supported: client_credentials, authorization_code, refresh_token.",
            )
        # Closed before the access record's own transaction: one connection at a time.
        async with runtime.sessions() as session:
            client = await service.authenticate_client(session, client_id=client_id, secret=secret)
            key = await service.current_signing_key(session, vault=vault)
            valid_from = await service.tokens_valid_from(session, client)
        roles = service.granted_roles(client, form.get("scope"))
    except service.OAuthError as exc:
        if exc.error == "invalid_client":
            throttles.failed(
                client_id=None if client_id is None else client_key(client_id, source),
                source=source,
            )
            await runtime.access_audit.auth_failed(
                reason=exc.description,
                client_id=client_id,
                path=request.url.path,
                source=source,
            )
        raise
    if time.time() < valid_from:
        # Re-enabled within the second of its revocation: a token stamped with that second
        # would be refused with the revoked ones, so it is stamped with the next.
        await asyncio.sleep(valid_from - time.time())
    issued = service.issue_token(
        key=key,
        client=client,
        roles=roles,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        ttl=settings.token_ttl_seconds,
        vault=vault,
        now=max(int(time.time()), math.ceil(valid_from)),
    )
    await runtime.access_audit.emit(
        AccessGranted(
            action="token.issue",
            resource_type="token",
            resource_id=issued.claims["jti"],
            agency=client.agency,
            client_id=client.client_id,
        ),
        agency=client.agency,
    )
    body = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    return JSONResponse(body, headers=_NO_STORE)


@router.get("/.well-known/jwks.json", tags=["oauth"], summary="Public signing keys")
async def jwks(settings: Config, session: ReadSession) -> JSONResponse:
    keys = await service.published_keys(
        session, token_ttl=timedelta(seconds=settings.token_ttl_seconds)
    )
    return JSONResponse({"keys": keys}, headers={"Cache-Control": "public, max-age=60"})


@router.get(
    "/.well-known/oauth-authorization-server",
    tags=["oauth"],
    summary="Authorization server metadata (RFC 8414)",
)
async def metadata(settings: Config) -> dict[str, Any]:
    issuer = settings.auth_issuer.rstrip("/")
    return {
        "issuer": settings.auth_issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": [r.value for r in Role],
        "response_types_supported": ["code"],
        # No `token_endpoint_auth_signing_alg_values_supported`: no JWT client authentication
        # (`private_key_jwt`, `client_secret_jwt`) is offered.
    }


# Administration


@admin.get("/agencies")
async def get_agencies(_: AgencyAdmin, session: ReadSession) -> AgencyList:
    rows = await service.list_agencies(session)
    return AgencyList(items=[AgencyOut.of(r) for r in rows])


@admin.post(
    "/agencies", status_code=201, responses={409: {"description": "The agency already exists"}}
)
async def post_agency(body: Agency, principal: AgencyAdmin, session: WriteSession) -> AgencyOut:
    row = await service.create_agency(session, agency=body, actor=principal.actor)
    return AgencyOut.of(row)


@admin.post(
    "/agencies/{agency_id}/disable",
    summary="Disable an agency: its clients' tokens refused everywhere, routing leaves it out",
)
async def disable_agency(
    agency_id: str, principal: AgencyAdmin, session: WriteSession
) -> AgencyOut:
    return await _set_agency_disabled(agency_id, principal, session, disabled=True)


@admin.post(
    "/agencies/{agency_id}/enable",
    summary="Enable an agency again (tokens issued before it was disabled stay refused)",
)
async def enable_agency(agency_id: str, principal: AgencyAdmin, session: WriteSession) -> AgencyOut:
    return await _set_agency_disabled(agency_id, principal, session, disabled=False)


async def _set_agency_disabled(
    agency_id: str, principal: Principal, session: AsyncSession, *, disabled: bool
) -> AgencyOut:
    row = await service.set_agency_disabled(
        session, agency_id=agency_id, disabled=disabled, actor=principal.actor
    )
    return AgencyOut.of(row)


@admin.get("/clients")
async def get_clients(
    _: ClientAdmin, session: ReadSession, agency: str | None = None
) -> ClientList:
    rows = await service.list_clients(session, agency=agency)
    return ClientList(items=[ClientOut.of(r) for r in rows])


@admin.post(
    "/clients", status_code=201, responses={409: {"description": "The client already exists"}}
)
async def post_client(
    body: ClientIn, principal: ClientAdmin, session: WriteSession
) -> ClientWithSecret:
    row, secret = await service.create_client(
        session,
        client_id=body.client_id,
        agency=body.agency,
        roles=body.roles,
        actor=principal.actor,
        redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
    )
    return ClientWithSecret(**ClientOut.of(row).model_dump(), client_secret=secret)


@admin.post("/clients/{client_id}/rotate")
async def rotate_client(
    client_id: str, principal: ClientAdmin, session: WriteSession
) -> ClientWithSecret:
    secret = await service.rotate_client_secret(session, client_id=client_id, actor=principal.actor)
    row = await session.get(Client, client_id)
    assert row is not None
    return ClientWithSecret(**ClientOut.of(row).model_dump(), client_secret=secret)


@admin.post(
    "/clients/{client_id}/disable",
    summary="Disable a client: no new tokens, and its current ones refused by every service",
)
async def disable_client(
    client_id: str, principal: ClientAdmin, session: WriteSession
) -> ClientOut:
    return await _set_client_disabled(client_id, principal, session, disabled=True)


@admin.post(
    "/clients/{client_id}/enable",
    summary="Enable a client again (tokens issued before it was disabled stay refused)",
)
async def enable_client(client_id: str, principal: ClientAdmin, session: WriteSession) -> ClientOut:
    return await _set_client_disabled(client_id, principal, session, disabled=False)


async def _set_client_disabled(
    client_id: str, principal: Principal, session: AsyncSession, *, disabled: bool
) -> ClientOut:
    row = await service.set_client_disabled(
        session, client_id=client_id, disabled=disabled, actor=principal.actor
    )
    return ClientOut.of(row)


@admin.post("/keys/rotate")
async def rotate_key(principal: KeyAdmin, vault: Keys, session: WriteSession) -> KeyOut:
    row = await service.rotate_signing_key(session, vault=vault, actor=principal.actor)
    return KeyOut(kid=row.kid)


# People


def _caller(principal: Principal) -> people.Caller:
    return people.Caller(actor=principal.actor, agency=principal.agency, roles=principal.roles)


@admin.get("/people", summary="People (a supervisor sees their own agency's)")
async def get_people(
    principal: PersonAdmin, session: ReadSession, agency: str | None = None
) -> PersonList:
    rows = await people.list_people(session, caller=_caller(principal), agency=agency)
    return PersonList(items=[PersonOut.of(r) for r in rows])


@admin.post(
    "/people",
    status_code=201,
    responses={409: {"description": "The username is taken"}},
    summary="Create a person",
)
async def post_person(
    body: PersonIn, principal: PersonAdmin, settings: Config, session: WriteSession
) -> PersonWithPassword:
    row, generated = await people.create_person(
        session,
        username=body.username,
        agency=body.agency,
        roles=body.roles,
        password=body.password,
        min_length=settings.password_min_length,
        caller=_caller(principal),
    )
    return PersonWithPassword(**PersonOut.of(row).model_dump(), password=generated)


@admin.get("/people/{person_id}")
async def get_person(person_id: str, principal: PersonAdmin, session: ReadSession) -> PersonOut:
    row = await people.get_person(session, person_id, _caller(principal))
    return PersonOut.of(row)


@admin.post(
    "/people/{person_id}/disable",
    summary="Disable a person: sessions and refresh tokens end, access tokens refused everywhere",
)
async def disable_person(
    person_id: str, principal: PersonAdmin, session: WriteSession
) -> PersonOut:
    return await _set_person_disabled(person_id, principal, session, disabled=True)


@admin.post("/people/{person_id}/enable", summary="Enable a person again")
async def enable_person(person_id: str, principal: PersonAdmin, session: WriteSession) -> PersonOut:
    return await _set_person_disabled(person_id, principal, session, disabled=False)


async def _set_person_disabled(
    person_id: str, principal: Principal, session: AsyncSession, *, disabled: bool
) -> PersonOut:
    row = await people.get_person(session, person_id, _caller(principal))
    await people.set_disabled(session, person=row, disabled=disabled, actor=principal.actor)
    return PersonOut.of(row)


@admin.post(
    "/people/{person_id}/reset",
    summary="Reset a person's password and/or second factor (their sessions end)",
)
async def reset_person(
    person_id: str,
    body: PersonReset,
    principal: PersonAdmin,
    settings: Config,
    session: WriteSession,
) -> PersonWithPassword:
    row = await people.get_person(session, person_id, _caller(principal))
    generated = await people.reset(
        session,
        person=row,
        password=body.password,
        new_password_wanted=body.new_password,
        second_factor=body.second_factor,
        min_length=settings.password_min_length,
        actor=principal.actor,
    )
    return PersonWithPassword(**PersonOut.of(row).model_dump(), password=generated)
