"""The OpenID Connect provider for people, built on Authlib's framework-agnostic
`AuthorizationServer`: authorization code with PKCE (S256, required) and OpenID Connect ID
tokens, refresh tokens rotated on every use with reuse detection, revocation (RFC 7009) and
RP-initiated logout. Access tokens are the same RFC 9068 JWTs as for clients, signed with
joserfc by identity's key, with `sub` the person, `agency`, `roles` and `amr`.

Authlib's grants are synchronous and call back into storage; storage here is async. So each
Authlib call runs in a worker thread (`Provider.call`) and its storage callbacks run on the
event loop (`Provider.run`), each in a transaction of its own. One-time things (codes, refresh
tokens) are claimed by a conditional UPDATE, so two concurrent uses cannot both succeed.
"""

import asyncio
import contextvars
import hashlib
import math
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from argon2.exceptions import InvalidHashError, VerificationError
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode, UserInfo
from authlib.oidc.rpinitiated import EndSessionEndpoint
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import update
from sqlmodel import col, select

from services.common.crypto import Vault
from services.common.db import transaction
from services.common.models import utcnow
from services.common.runtime import ServiceRuntime
from services.identity import service
from services.identity.models import (
    Agency,
    AuthorizationCode,
    Client,
    Person,
    RefreshToken,
)
from services.identity.settings import IdentitySettings

T = TypeVar("T")
CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]
SCOPES = ("openid", "profile")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# What Authlib reads of a request, collected on the event loop before entering its code.


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, values: Mapping[str, str], datalist: dict[str, list[str]]) -> None:
        self._values = dict(values)
        self._datalist = datalist

    @property
    def data(self) -> dict[str, str]:
        return self._values

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class Incoming(OAuth2Request):  # type: ignore[misc]
    """An HTTP request as Authlib sees it: query and form already read."""

    def __init__(
        self,
        *,
        method: str,
        url: str,
        headers: Mapping[str, str],
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method=method, uri=url, headers=headers)
        datalist: dict[str, list[str]] = {}
        for name, value in [*query, *form]:
            datalist.setdefault(name, []).append(value)
        self._query = dict(query)
        self._form = dict(form)
        self.payload = _Payload({**self._query, **self._form}, datalist)

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


# Authlib's models over our rows


@dataclass
class OAuthClient(ClientMixin):  # type: ignore[misc]
    row: Client
    id_token_signed_response_alg: str = service.ALGORITHM

    @property
    def client_id(self) -> str:
        return self.row.client_id

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": list(self.row.post_logout_redirect_uris)}

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # the redirect URI must always be named, and match exactly

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        # Called in Authlib's worker thread: argon2 may block it.
        try:
            return bool(service._hasher.verify(self.row.secret_hash, client_secret))
        except (VerificationError, InvalidHashError):
            return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in CLIENT_AUTH

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and bool(self.row.redirect_uris)

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token") and bool(
            self.row.redirect_uris
        )


@dataclass(frozen=True)
class SignedIn:
    """A person as the grants see them: who, how (amr), when, in which sign-in session."""

    person: Person
    amr: list[str]
    auth_time: datetime
    session_id: str


@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    row: AuthorizationCode

    @property
    def code_challenge(self) -> str:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str]:
        return list(self.row.amr)


@dataclass
class Refresh(TokenMixin):  # type: ignore[misc]
    row: RefreshToken

    def check_client(self, client: OAuthClient) -> bool:
        return bool(self.row.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.row.expires_at - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


@dataclass
class Issued:
    """What the token generator issued during one request (for the audit record)."""

    tokens: list[dict[str, Any]] = field(default_factory=list)
    reuse: list[RefreshToken] = field(default_factory=list)


_issued: contextvars.ContextVar[Issued] = contextvars.ContextVar("issued")


# The provider


class Provider(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self, *, runtime: ServiceRuntime, settings: IdentitySettings, vault: Vault
    ) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.runtime = runtime
        self.settings = settings
        self.vault = vault
        self.issuer = settings.auth_issuer.rstrip("/")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.register_token_generator("default", self._generate)
        self.register_grant(CodeGrant, [S256Required(), IdToken(self)])
        self.register_grant(RotatingRefresh)
        self.register_endpoint(Revocation)
        self.register_endpoint(EndSession)

    # Bridging Authlib's synchronous code and our async storage

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, Issued]:
        """Run an Authlib entry point in a worker thread; returns its result and what it
        issued."""
        self._loop = asyncio.get_running_loop()
        issued = Issued()
        token = _issued.set(issued)
        try:
            result = await asyncio.to_thread(fn, *args, **kwargs)
        finally:
            _issued.reset(token)
        return result, issued

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """From Authlib's worker thread: run a storage coroutine on the event loop."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    # AuthorizationServer's framework hooks

    def create_oauth2_request(self, request: Incoming) -> Incoming:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def query_client(self, client_id: str) -> OAuthClient | None:
        if not client_id or len(client_id) > 100:
            return None
        return self.run(self._client(client_id))

    async def _client(self, client_id: str) -> OAuthClient | None:
        async with self.runtime.sessions() as session:
            row = await session.get(Client, client_id)
            if row is None or row.disabled or not row.redirect_uris:
                return None
            agency = await session.get(Agency, row.agency)
            if agency is not None and agency.disabled:
                return None
        return OAuthClient(row)

    # Tokens

    def _generate(
        self,
        *,
        grant_type: str,
        client: OAuthClient,
        user: SignedIn,
        scope: str | None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        key = self.run(self._signing_key())
        person = user.person
        now = int(time.time())
        if person.tokens_not_before is not None:
            now = max(now, math.ceil(person.tokens_not_before.timestamp()))
        ttl = self.settings.token_ttl_seconds
        claims: dict[str, Any] = {
            "iss": self.settings.auth_issuer,
            "sub": person.id,
            "aud": self.settings.auth_audience,
            "exp": now + ttl,
            "iat": now,
            "nbf": now,
            "jti": secrets.token_urlsafe(16),
            "client_id": client.get_client_id(),
            "agency": person.agency,
            "roles": list(person.roles),
            "scope": " ".join(list(person.roles) + (scope or "").split()),
            "amr": list(user.amr),
            "auth_time": int(user.auth_time.timestamp()),
            "preferred_username": person.username,
            "sid": user.session_id,
        }
        header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        access = jwt.encode(
            header, claims, service.private_key(key, self.vault), algorithms=[key.alg]
        )
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": ttl,
            "scope": scope or "",
        }
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(32)
        _issued.get().tokens.append(claims)
        return token

    async def _signing_key(self) -> Any:
        async with self.runtime.sessions() as session:
            return await service.current_signing_key(session, vault=self.vault)

    def private_jwk(self) -> tuple[str, ECKey]:
        row = self.run(self._signing_key())
        return row.kid, service.private_key(row, self.vault)

    def save_token(self, token: dict[str, Any], request: Incoming) -> None:
        refresh = token.get("refresh_token")
        if not refresh:
            return
        user: SignedIn = request.user
        if request.refresh_token is not None:
            family = request.refresh_token.row.family_id
        else:
            family = request.authorization_code.row.code_hash
        row = RefreshToken(
            token_hash=digest(refresh),
            family_id=family,
            client_id=request.client.get_client_id(),
            person_id=user.person.id,
            session_id=user.session_id,
            scope=token.get("scope", ""),
            amr=list(user.amr),
            auth_time=user.auth_time,
            expires_at=utcnow() + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
        )
        self.run(self._add(row))

    async def _add(self, row: Any) -> None:
        async with transaction(self.runtime.sessions) as session:
            session.add(row)

    # Storage for the grants

    async def claim_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The code, if it is this client's, unexpired and unused; using it marks it used. A
        replayed code also ends the refresh tokens issued from it (RFC 6749 §4.1.2)."""
        now = utcnow()
        async with transaction(self.runtime.sessions) as session:
            row = await session.get(AuthorizationCode, digest(code))
            if row is None or row.client_id != client_id:
                return None
            if row.used_at is not None:
                await revoke_family(session, family_id=row.code_hash)
                return None
            if row.expires_at <= now:
                return None
            result = await session.exec(
                update(AuthorizationCode)
                .where(col(AuthorizationCode.code_hash) == row.code_hash)
                .where(col(AuthorizationCode.used_at).is_(None))
                .values(used_at=now)
            )
            return row if result.rowcount == 1 else None

    async def claim_refresh(self, token: str) -> tuple[RefreshToken | None, RefreshToken | None]:
        """(the refresh token if it is live, else None; the token if it was reused). Using
        one rotates it; a rotated one presented again means it leaked: its whole family is
        revoked."""
        now = utcnow()
        async with transaction(self.runtime.sessions) as session:
            row = await session.get(RefreshToken, digest(token))
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                return None, None
            person = await session.get(Person, row.person_id)
            if person is None or person.disabled:
                return None, None
            result = await session.exec(
                update(RefreshToken)
                .where(col(RefreshToken.token_hash) == row.token_hash)
                .where(col(RefreshToken.rotated_at).is_(None))
                .where(col(RefreshToken.revoked_at).is_(None))
                .values(rotated_at=now)
            )
            if result.rowcount == 1:
                return row, None
            await revoke_family(session, family_id=row.family_id)
        return None, row

    async def person(self, person_id: str) -> Person | None:
        async with self.runtime.sessions() as session:
            row = await session.get(Person, person_id)
        return None if row is None or row.disabled else row

    async def refresh_row(self, token: str) -> RefreshToken | None:
        async with self.runtime.sessions() as session:
            return await session.get(RefreshToken, digest(token))

    async def revoke_family_of(self, row: RefreshToken) -> None:
        async with transaction(self.runtime.sessions) as session:
            await revoke_family(session, family_id=row.family_id)

    async def nonce_used(self, nonce: str, client_id: str) -> bool:
        async with self.runtime.sessions() as session:
            query = select(AuthorizationCode).where(
                AuthorizationCode.nonce == nonce, AuthorizationCode.client_id == client_id
            )
            return (await session.exec(query)).first() is not None

    async def jwks(self) -> dict[str, Any]:
        async with self.runtime.sessions() as session:
            keys = await service.published_keys(
                session, token_ttl=timedelta(seconds=self.settings.token_ttl_seconds)
            )
        return {"keys": keys}


async def revoke_family(session: Any, *, family_id: str) -> None:
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id)
        .where(col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


# Grants and extensions


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH
    server: Provider

    def save_authorization_code(self, code: str, request: Incoming) -> None:
        user: SignedIn = request.user
        data = request.payload.data
        row = AuthorizationCode(
            code_hash=digest(code),
            client_id=request.client.get_client_id(),
            person_id=user.person.id,
            session_id=user.session_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            nonce=data.get("nonce"),
            code_challenge=data["code_challenge"],
            code_challenge_method=data.get("code_challenge_method", "S256"),
            amr=list(user.amr),
            auth_time=user.auth_time,
            expires_at=utcnow()
            + timedelta(seconds=self.server.settings.authorization_code_ttl_seconds),
        )
        self.server.run(self.server._add(row))

    def query_authorization_code(self, code: str, client: OAuthClient) -> Code | None:
        if not code or len(code) > 200:
            return None
        row = self.server.run(self.server.claim_code(code, client.get_client_id()))
        return Code(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        return None  # claimed (marked used) when it was looked up

    def authenticate_user(self, authorization_code: Code) -> SignedIn | None:
        row = authorization_code.row
        person = self.server.run(self.server.person(row.person_id))
        if person is None:
            return None
        return SignedIn(person, list(row.amr), row.auth_time, row.session_id)


class S256Required(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, confidential ones too, and only S256 (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class IdToken(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider
        self._kid: str | None = None

    def exists_nonce(self, nonce: str, request: Incoming) -> bool:
        return self.provider.run(self.provider.nonce_used(nonce, request.payload.client_id))

    def resolve_client_private_key(self, client: OAuthClient) -> ECKey:
        kid, key = self.provider.private_jwk()
        self._kid = kid
        return key

    def get_client_algorithm(self, client: OAuthClient) -> str:
        return service.ALGORITHM

    def get_encode_header(self, client: OAuthClient) -> dict[str, str]:
        kid, _ = self.provider.private_jwk()
        return {"alg": service.ALGORITHM, "kid": kid, "typ": "JWT"}

    def get_client_claims(self, client: OAuthClient) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.provider.settings.auth_issuer,
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + self.provider.settings.token_ttl_seconds,
        }

    def generate_user_info(self, user: SignedIn, scope: str) -> UserInfo:
        return user_info(user.person) | {"sid": user.session_id}


def user_info(person: Person) -> UserInfo:
    return UserInfo(
        sub=person.id,
        preferred_username=person.username,
        agency=person.agency,
        roles=list(person.roles),
    )


class RotatingRefresh(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: Provider

    def authenticate_refresh_token(self, refresh_token: str) -> Refresh | None:
        if not refresh_token or len(refresh_token) > 200:
            return None
        row, reused = self.server.run(self.server.claim_refresh(refresh_token))
        if reused is not None:
            _issued.get().reuse.append(reused)
        return Refresh(row) if row is not None else None

    def authenticate_user(self, refresh_token: Refresh) -> SignedIn | None:
        row = refresh_token.row
        person = self.server.run(self.server.person(row.person_id))
        if person is None:
            return None
        return SignedIn(person, list(row.amr), row.auth_time, row.session_id)

    def revoke_old_credential(self, refresh_token: Refresh) -> None:
        return None  # rotated (marked) when it was claimed


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 for refresh tokens: revoking one ends its whole family. Access tokens are
    short-lived JWTs and are not revoked one by one (disable the person to refuse them)."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH
    SUPPORTED_TOKEN_TYPES = ("refresh_token",)
    server: Provider

    def query_token(self, token_string: str, token_type_hint: str | None) -> Refresh | None:
        if len(token_string) > 200:
            return None
        row = self.server.run(self.server.refresh_row(token_string))
        return Refresh(row) if row is not None else None

    def revoke_token(self, token: Refresh, request: Incoming) -> None:
        self.server.run(self.server.revoke_family_of(token.row))


class EndSession(EndSessionEndpoint):  # type: ignore[misc]
    """RP-initiated logout; the caller ends the identity session (it holds the cookie)."""

    server: Provider

    def get_server_jwks(self) -> dict[str, Any]:
        return self.server.run(self.server.jwks())

    def get_algorithms(self) -> list[str]:
        return [service.ALGORITHM]

    def end_session(self, end_session_request: Any) -> None:
        return None
