"""Resource-server side: validate bearer tokens against an issuer's JWKS, yield a `Principal`.

Works with any OIDC/OAuth2 issuer that signs JWT access tokens (RFC 9068) with an allowed
algorithm, configured by issuer, audience and JWKS URL: ours, or e.g. Keycloak.
"""

import asyncio
import json
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from contracts.events import AccessDenied
from contracts.vocabulary import Role
from services.common.access import AccessAudit
from services.common.errors import NotFound, Unauthorized
from services.common.permissions import Action, permitted
from services.common.revocation import Revocations
from services.common.settings import Settings

ALGORITHMS: tuple[str, ...] = ("ES256",)
JwksSource = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Principal:
    client_id: str
    agency: str
    roles: frozenset[Role]
    scopes: frozenset[str]
    token_id: str
    subject: str = ""  # `sub`: the client, or the person who signed in through it
    issued_at: float | None = None  # `iat`, checked against revocations
    person: str | None = None  # the person's username when a person signed in
    expires_at: float | None = None  # `exp`: a long-lived response ends with its token

    @property
    def person_subject(self) -> str | None:
        """The `sub` of the person behind the token (it differs from the client id), if any."""
        return self.subject if self.subject and self.subject != self.client_id else None

    @property
    def actor(self) -> str:
        """Who acts, for the audit trail: the person's username, else the client id."""
        return self.person or self.client_id


class InvalidToken(Unauthorized):
    """The token is not acceptable; `reason` is safe to log and to return."""

    def __init__(self, reason: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason, headers=headers)
        self.reason = reason


def http_jwks(url: str, *, timeout: float = 5.0) -> JwksSource:
    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data

    return fetch


class TokenVerifier:
    """Verifies access tokens. The key set is cached and re-fetched when a token names an
    unknown `kid` (at most `max_refreshes` times per `refresh_interval`, so tokens with random
    kids cannot turn into a flood of requests to the issuer)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: JwksSource,
        algorithms: Sequence[str] = ALGORITHMS,
        leeway: int = 30,
        refresh_interval: float = 10.0,
        max_refreshes: int = 5,
        require_at_jwt: bool = True,
        cache_size: int = 10_000,
        max_lifetime: int | None = 3600,
        agency_claim: str = "agency",
        roles_claim: str = "roles",
        username_claim: str = "preferred_username",
        ignore_unknown_roles: bool = False,
    ) -> None:
        unsafe = [a for a in algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if unsafe:
            # Symmetric algorithms would let anyone holding the public key mint tokens.
            raise ValueError(f"algorithms not allowed for access tokens: {unsafe}")
        self.issuer = issuer
        self.audience = audience
        self._jwks = jwks
        self._algorithms = list(algorithms)
        self._leeway = leeway
        self._refresh_interval = refresh_interval
        self._max_refreshes = max_refreshes
        self._require_at_jwt = require_at_jwt
        self._cache_size = cache_size
        self._max_lifetime = max_lifetime
        self._agency_claim = agency_claim
        self._roles_claim = roles_claim
        self._username_claim = username_claim
        self._ignore_unknown_roles = ignore_unknown_roles
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._refreshes: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def _key_set(self, kid: str) -> KeySet:
        async with self._lock:
            now = time.monotonic()
            while self._refreshes and now - self._refreshes[0] > self._refresh_interval:
                self._refreshes.popleft()
            may_refresh = len(self._refreshes) < self._max_refreshes
            if self._keys is None or (kid not in self._kids and may_refresh):
                self._refreshes.append(now)
                data = await self._jwks()
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
                self._kids = {str(k.get("kid")) for k in data.get("keys", [])}
            if kid not in self._kids:
                raise InvalidToken("unknown signing key")
            return self._keys

    async def verify(self, token: str) -> Principal:
        # Agency systems reuse a token for its whole life: verify its signature once.
        cached = self._verified.get(token)
        if cached is not None:
            principal, exp = cached
            if time.time() < exp + self._leeway:
                return principal
            del self._verified[token]
        principal, exp = await self._verify(token)
        if self._cache_size:
            self._verified[token] = (principal, exp)
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError, UnicodeError) as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") not in self._algorithms:
            raise InvalidToken("algorithm not allowed")
        typ = str(header.get("typ", "")).lower()
        if self._require_at_jwt and typ not in ("at+jwt", "application/at+jwt"):
            raise InvalidToken("not an access token (typ)")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token names no signing key")
        keys = await self._key_set(kid)
        try:
            claims = jwt.decode(token, keys, algorithms=self._algorithms).claims
        except JoseError as exc:
            raise InvalidToken("bad signature") from exc
        registry = jwt.JWTClaimsRegistry(
            leeway=self._leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidToken(_claim_reason(exc)) from exc
        lifetime = float(claims["exp"]) - float(claims["iat"])
        if self._max_lifetime is not None and lifetime > self._max_lifetime:
            # A token minted to live for months (a leaked key, a misconfigured issuer) is
            # refused, so a revocation's reach is never outlived by much.
            raise InvalidToken("token lifetime exceeds the maximum")
        try:
            client_id = str(claims.get("client_id") or claims.get("azp") or claims["sub"])
            subject = str(claims["sub"])
            names = _claim(claims, self._roles_claim) or []
            if not isinstance(names, list):
                raise TypeError("roles claim is not a list")
            if self._ignore_unknown_roles:
                # An external provider's tokens carry its own roles too (offline_access, ...).
                names = [r for r in names if r in _ROLE_NAMES]
            roles = frozenset(Role(r) for r in names)
            agency = _claim(claims, self._agency_claim)
            if not isinstance(agency, str) or not agency:
                raise KeyError(self._agency_claim)
            username = _claim(claims, self._username_claim)
            person = None
            if subject != client_id:  # a person signed in through a client
                person = str(username) if isinstance(username, str) and username else subject
            principal = Principal(
                client_id=client_id,
                agency=agency,
                roles=roles,
                scopes=frozenset(str(claims.get("scope", "")).split()),
                token_id=str(claims["jti"]),
                subject=subject,
                issued_at=float(claims["iat"]),
                person=person,
                expires_at=float(claims["exp"]),
            )
            return principal, float(claims["exp"])
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidToken("missing or invalid agency/roles claims") from exc


_ROLE_NAMES = frozenset(r.value for r in Role)


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (`realm_access.roles`)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _claim_reason(exc: JoseError) -> str:
    name = type(exc).__name__
    if name == "ExpiredTokenError":
        return "token expired"
    if name == "InvalidTokenError":
        return "token not yet valid"
    claim = getattr(exc, "claim", None)
    return f"invalid claim {claim}" if claim else f"invalid claims ({exc.error})"


class Verifiers:
    """Tokens from several issuers: the configured one (ours) and the trusted ones (e.g. an
    agency's or a country's own OpenID provider for people), chosen by the token's `iss`."""

    def __init__(self, verifiers: Sequence[TokenVerifier]) -> None:
        self._by_issuer = {v.issuer: v for v in verifiers}

    async def verify(self, token: str) -> Principal:
        try:
            payload = jws.extract_compact(token.encode()).payload
            issuer = json.loads(payload).get("iss")
        except (JoseError, ValueError, UnicodeError, AttributeError) as exc:
            raise InvalidToken("malformed token") from exc
        verifier = self._by_issuer.get(issuer) if isinstance(issuer, str) else None
        if verifier is None:
            raise InvalidToken("invalid claim iss")
        return await verifier.verify(token)


def verifier_from_settings(
    settings: Settings, *, jwks: JwksSource | None = None
) -> TokenVerifier | Verifiers:
    """A verifier for the configured issuer (its JWKS fetched over HTTP unless given), and for
    each trusted issuer in `auth_trusted_issuers`."""
    url = settings.auth_jwks_url or f"{settings.auth_issuer.rstrip('/')}/.well-known/jwks.json"
    own = TokenVerifier(
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        jwks=jwks or http_jwks(url),
        algorithms=settings.auth_algorithms,
        leeway=settings.auth_leeway_seconds,
        require_at_jwt=settings.auth_require_at_jwt,
        max_lifetime=settings.auth_max_token_lifetime_seconds,
        agency_claim=settings.auth_agency_claim,
        roles_claim=settings.auth_roles_claim,
        username_claim=settings.auth_username_claim,
    )
    if not settings.auth_trusted_issuers:
        return own
    others = [
        TokenVerifier(
            issuer=t.issuer,
            audience=t.audience or settings.auth_audience,
            jwks=http_jwks(t.jwks_url),
            algorithms=t.algorithms,
            leeway=settings.auth_leeway_seconds,
            require_at_jwt=t.require_at_jwt,
            max_lifetime=settings.auth_max_token_lifetime_seconds,
            agency_claim=t.agency_claim,
            roles_claim=t.roles_claim,
            username_claim=t.username_claim,
            ignore_unknown_roles=True,
        )
        for t in settings.auth_trusted_issuers
    ]
    return Verifiers([own, *others])


_bearer = HTTPBearer(auto_error=False)


def _audit(request: Request) -> AccessAudit:
    audit: AccessAudit = request.app.state.access_audit
    return audit


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller's principal, or 401 (audited as `auth.failed`). A token whose client, agency
    or person was disabled is refused like an invalid one (services.common.revocation)."""
    verifier: TokenVerifier | Verifiers = request.app.state.verifier
    if credentials is None:
        reason = "missing bearer token"
        challenge = 'Bearer realm="nrm"'
    else:
        try:
            principal = await verifier.verify(credentials.credentials)
            revocations: Revocations | None = getattr(request.app.state, "revocations", None)
            refused = None
            if revocations is not None:
                refused = revocations.refusal(
                    client_id=principal.client_id,
                    agency=principal.agency,
                    subject=principal.subject,
                    issued_at=principal.issued_at,
                )
            if refused is None:
                return principal
            raise InvalidToken(refused)
        except InvalidToken as exc:
            reason = exc.reason
            challenge = f'Bearer realm="nrm", error="invalid_token", error_description="{reason}"'
    client = request.client.host if request.client else None
    await _audit(request).auth_failed(reason=reason, path=request.url.path, source=client)
    raise InvalidToken(reason, headers={"WWW-Authenticate": challenge})


def still_authorised(request: Request, principal: Principal) -> bool:
    """For a response that outlives its request (the inbox stream): the token has not expired,
    and its client, agency or person has not been disabled since it was checked."""
    if principal.expires_at is not None and time.time() >= principal.expires_at:
        return False
    revocations: Revocations | None = getattr(request.app.state, "revocations", None)
    if revocations is None:
        return True
    refused = revocations.refusal(
        client_id=principal.client_id,
        agency=principal.agency,
        subject=principal.subject,
        issued_at=principal.issued_at,
    )
    return refused is None


def require(action: Action) -> Callable[..., Awaitable[Principal]]:
    """A dependency: an authenticated principal whose roles allow `action`, else 404 (audited)."""
    return require_any(action)


def require_any(*actions: Action) -> Callable[..., Awaitable[Principal]]:
    """Like `require`, for endpoints that serve several actions (the service narrows by role)."""

    # One flat dependency (not one per step): FastAPI's resolution costs per dependency, and
    # this runs on every request.
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = await authenticate(request, credentials)
        if not any(permitted(principal.roles, a) for a in actions):
            await _audit(request).emit(
                AccessDenied(
                    action="|".join(a.value for a in actions),
                    resource_type="endpoint",
                    resource_id=f"{request.method} {request.url.path}",
                    agency=principal.agency,
                    client_id=principal.client_id,
                    actor=principal.actor,
                    reason="role does not allow this action",
                ),
                agency=principal.agency,
            )
            raise NotFound("Not found.", audited=True)
        # For the central 404 handler: object-level refusals are audited with who asked.
        request.state.principal = principal
        return principal

    return dependency
