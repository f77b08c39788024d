"""Identity domain logic: agencies, clients, secrets, signing keys, tokens.

Plain functions; the caller owns the transaction. Every administrative change is announced by an
`admin.changed` event in the same transaction.
"""

import asyncio
import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import AccessRestored, AccessRevoked, SubjectType
from contracts.referrals import Agency as AgencySpec
from contracts.vocabulary import Role
from services.common.access import admin_changed
from services.common.crypto import Vault
from services.common.errors import Conflict, NotFound, NRMError, UnprocessableContent
from services.common.models import utcnow
from services.common.outbox import add_event
from services.common.revocation import next_second, subject_key
from services.identity.models import Agency, Client, SigningKey

SERVICE = "identity"
ALGORITHM = "ES256"
AGENCY_ROLES = (Role.REFERRER, Role.CASEWORKER, Role.SUPERVISOR)
SYSTEM_CLIENTS: dict[str, tuple[Role, ...]] = {
    "auditor": (Role.AUDITOR,),
    "admin": (Role.ADMIN,),
    "analyst": (Role.ANALYST,),
    "dpo": (Role.DPO,),
}
# Clients that sign people in, seeded with their redirect paths under the issuer.
PEOPLE_CLIENTS: dict[str, tuple[str, str]] = {"console": ("/console/callback", "/console/")}

# OWASP's minimum argon2id profile: secrets are 256-bit random, so the hash guards a stolen
# database, not weak passwords; a heavier profile would only cap token issuance.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


class OAuthError(NRMError):
    """An RFC 6749 §5.2 error response: a declared variant of the problem mapping, since the
    token endpoint's errors are JSON `{"error", "error_description"}` by that RFC."""

    media_type = "application/json"

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if status == 401:
            # RFC 6749 §5.2: invalid_client answers with the scheme the client should use.
            no_store["WWW-Authenticate"] = 'Basic realm="nrm"'
        super().__init__(description, headers={**no_store, **(headers or {})})
        self.status = status
        self.error = error
        self.description = description

    def body(self, *, instance: str | None) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


# Agencies


async def create_agency(session: AsyncSession, *, agency: AgencySpec, actor: str | None) -> Agency:
    if await session.get(Agency, agency.id) is not None:
        raise Conflict(f"Agency {agency.id!r} already exists.")
    row = Agency(
        id=agency.id,
        name=agency.name,
        type=agency.type.value,
        regions=list(agency.regions),
        language=agency.language,
    )
    session.add(row)
    await _announce(session, "agency.created", "agency", agency.id, actor)
    return row


async def set_agency_disabled(
    session: AsyncSession, *, agency_id: str, disabled: bool, actor: str | None
) -> Agency:
    """Disable an agency (its clients' tokens are refused everywhere, routing leaves it out) or
    enable it again."""
    row = await session.get(Agency, agency_id)
    if row is None:
        raise NotFound(f"No agency {agency_id!r}.")
    if row.disabled != disabled:
        row.disabled = disabled
        if disabled:
            row.tokens_not_before = await revoke_access(
                session, subject_type="agency", subject_id=agency_id, actor=actor
            )
        else:
            await restore_access(session, subject_type="agency", subject_id=agency_id, actor=actor)
        session.add(row)
        action = "agency.disabled" if disabled else "agency.enabled"
        await _announce(session, action, "agency", agency_id, actor)
    return row


async def list_agencies(session: AsyncSession) -> list[Agency]:
    return list(await session.exec(select(Agency).order_by(col(Agency.id))))


# Clients


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def hash_secret(secret: str) -> str:
    return await asyncio.to_thread(_hasher.hash, secret)


def check_redirect_uri(uri: str) -> str:
    """An absolute https URI without a fragment (http only to a loopback host, RFC 8252)."""
    parts = urlsplit(uri)
    if parts.fragment or not parts.hostname or parts.scheme not in ("https", "http"):
        raise ValueError("must be an absolute http(s) URI without a fragment")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("http is allowed only for a loopback host")
    return uri


def check_roles_apart(roles: list[Role]) -> None:
    """The `dpo` role stands alone: it approves erasures that a supervisor asks for, and one
    account holding both would make the two-person rule one person's."""
    if Role.DPO in roles and len(set(roles)) > 1:
        raise UnprocessableContent(
            "The dpo role cannot be combined with other roles.",
            errors=[
                {
                    "path": "roles",
                    "type": "roles_combined",
                    "message": "dpo approves what others request: give it an account of its own",
                }
            ],
        )


async def create_client(
    session: AsyncSession,
    *,
    client_id: str,
    agency: str,
    roles: list[Role],
    actor: str | None,
    redirect_uris: list[str] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
) -> tuple[Client, str]:
    """Returns the client and its secret: the only time the secret exists in clear."""
    check_roles_apart(roles)
    if await session.get(Client, client_id) is not None:
        raise Conflict(f"Client {client_id!r} already exists.")
    system = set(roles) <= {Role.AUDITOR, Role.ADMIN, Role.ANALYST, Role.DPO}
    if not system and await session.get(Agency, agency) is None:
        raise UnprocessableContent(f"No agency {agency!r}.")
    secret = new_secret()
    row = Client(
        client_id=client_id,
        agency=agency,
        roles=sorted(r.value for r in roles),
        secret_hash=await hash_secret(secret),
        redirect_uris=list(redirect_uris or []),
        post_logout_redirect_uris=list(post_logout_redirect_uris or []),
    )
    session.add(row)
    await _announce(
        session, "client.created", "client", client_id, actor, agency=agency, roles=row.roles
    )
    return row, secret


async def _client(session: AsyncSession, client_id: str) -> Client:
    row = await session.get(Client, client_id)
    if row is None:
        raise NotFound(f"No client {client_id!r}.")
    return row


async def rotate_client_secret(session: AsyncSession, *, client_id: str, actor: str | None) -> str:
    row = await _client(session, client_id)
    secret = new_secret()
    row.secret_hash = await hash_secret(secret)
    row.secret_rotated_at = utcnow()
    session.add(row)
    await _announce(session, "client.secret_rotated", "client", client_id, actor)
    return secret


async def set_client_disabled(
    session: AsyncSession, *, client_id: str, disabled: bool, actor: str | None
) -> Client:
    """Disable a client (no new tokens; its current ones refused everywhere) or enable it."""
    row = await _client(session, client_id)
    if row.disabled != disabled:
        row.disabled = disabled
        if disabled:
            row.tokens_not_before = await revoke_access(
                session, subject_type="client", subject_id=client_id, actor=actor
            )
        else:
            await restore_access(session, subject_type="client", subject_id=client_id, actor=actor)
        session.add(row)
        action = "client.disabled" if disabled else "client.enabled"
        await _announce(session, action, "client", client_id, actor)
    return row


async def revoke_access(
    session: AsyncSession,
    *,
    subject_type: SubjectType,
    subject_id: str,
    actor: str | None,
    reason: str | None = None,
) -> datetime:
    """Announce `access.revoked`: every service refuses the subject's tokens from now on. For
    any kind of subject (clients, agencies, and people when they sign in). Returns the instant
    before which its tokens stay refused, which the caller keeps so new tokens come after it."""
    not_before = next_second(utcnow())
    payload = AccessRevoked(
        subject_type=subject_type,
        subject_id=subject_id,
        not_before=not_before,
        actor=actor,
        reason=reason,
    )
    await add_event(
        session,
        CloudEvent.new(
            source=SERVICE, payload=payload, subject=subject_key(subject_type, subject_id)
        ),
    )
    return not_before


async def restore_access(
    session: AsyncSession, *, subject_type: SubjectType, subject_id: str, actor: str | None
) -> None:
    """Announce `access.restored`: tokens issued from now on are accepted again."""
    payload = AccessRestored(subject_type=subject_type, subject_id=subject_id, actor=actor)
    await add_event(
        session,
        CloudEvent.new(
            source=SERVICE, payload=payload, subject=subject_key(subject_type, subject_id)
        ),
    )


async def list_clients(session: AsyncSession, *, agency: str | None = None) -> list[Client]:
    query = select(Client).order_by(col(Client.client_id))
    if agency is not None:
        query = query.where(Client.agency == agency)
    return list(await session.exec(query))


async def authenticate_client(session: AsyncSession, *, client_id: str, secret: str) -> Client:
    row = await session.get(Client, client_id)
    # Hash even for unknown clients so response time does not reveal which ids exist.
    stored = row.secret_hash if row is not None else _DUMMY_HASH
    await _verify_secret(client_id, secret, stored)
    if row is None:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    if row.disabled:
        raise OAuthError("invalid_client", "Client is disabled.", status=401)
    agency = await session.get(Agency, row.agency)
    if agency is not None and agency.disabled:
        raise OAuthError("invalid_client", "Client's agency is disabled.", status=401)
    return row


async def tokens_valid_from(session: AsyncSession, client: Client) -> float:
    """The earliest `iat` a new token of this client may carry: after its last revocation and
    its agency's (one re-enabled within the second of its revocation waits for the next)."""
    agency = await session.get(Agency, client.agency)
    floors = [client.tokens_not_before, agency.tokens_not_before if agency else None]
    return max((_aware(f).timestamp() for f in floors if f is not None), default=0.0)


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(32))

# Agency systems ask for a token every few minutes with the same secret. Remember which
# (client, secret digest) pairs verified against which stored hash, so argon2 runs once per
# secret rather than once per request; a rotated secret changes the stored hash and misses.
_VERIFIED_MAX = 10_000
_verified: OrderedDict[tuple[str, bytes], str] = OrderedDict()


async def _verify_secret(client_id: str, secret: str, stored: str) -> None:
    cache_key = (client_id, hashlib.sha256(secret.encode()).digest())
    if _verified.get(cache_key) == stored:
        _verified.move_to_end(cache_key)
        return
    try:
        await asyncio.to_thread(_hasher.verify, stored, secret)
    except (VerificationError, InvalidHashError):
        raise OAuthError("invalid_client", "Client authentication failed.", status=401) from None
    _verified[cache_key] = stored
    if len(_verified) > _VERIFIED_MAX:
        _verified.popitem(last=False)


# Signing keys and tokens


def _new_key(vault: Vault) -> SigningKey:
    kid = secrets.token_urlsafe(12)
    key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})
    sealed = vault.seal(dict(key.as_dict(private=True)), record_id=kid)
    return SigningKey(
        kid=kid,
        alg=ALGORITHM,
        sealed_private=sealed.ciphertext,
        wrapped_key=sealed.wrapped_key,
        master_key_id=sealed.master_key_id,
        public_jwk={k: str(v) for k, v in key.as_dict(private=False).items()},
    )


async def current_signing_key(session: AsyncSession, *, vault: Vault) -> SigningKey:
    """The active key; the first call creates one."""
    query = (
        select(SigningKey)
        .where(col(SigningKey.retired_at).is_(None))
        .order_by(col(SigningKey.created_at).desc())
    )
    row = (await session.exec(query)).first()
    if row is None:
        row = _new_key(vault)
        session.add(row)
    return row


async def rotate_signing_key(
    session: AsyncSession, *, vault: Vault, actor: str | None
) -> SigningKey:
    """Retire the active key (still published until its tokens expire) and start a new one."""
    old = await current_signing_key(session, vault=vault)
    old.retired_at = utcnow()
    session.add(old)
    new = _new_key(vault)
    session.add(new)
    await _announce(session, "signing_key.rotated", "signing_key", new.kid, actor, retired=old.kid)
    return new


async def published_keys(
    session: AsyncSession, *, token_ttl: timedelta, now: datetime | None = None
) -> list[dict[str, str]]:
    """Public JWKs: the active key plus retired keys whose tokens may still be unexpired."""
    cutoff = (now or utcnow()) - token_ttl
    rows = await session.exec(select(SigningKey).order_by(col(SigningKey.created_at).desc()))
    return [r.public_jwk for r in rows if r.retired_at is None or _aware(r.retired_at) > cutoff]


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were written as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    claims: dict[str, Any]


_imported: dict[str, ECKey] = {}


def private_key(row: SigningKey, vault: Vault) -> ECKey:
    """Unsealed and parsed once per key: both cost more than signing with it."""
    key = _imported.get(row.kid)
    if key is None:
        jwk = vault.open_row(row, record_id=row.kid, column="sealed_private")
        key = _imported[row.kid] = ECKey.import_key(jwk)
    return key


def granted_roles(client: Client, requested_scope: str | None) -> list[str]:
    """Scope = roles. No scope asked: all the client's roles; otherwise a subset of them."""
    if not requested_scope:
        return list(client.roles)
    asked = requested_scope.split()
    if not set(asked) <= set(client.roles):
        raise OAuthError("invalid_scope", "Requested scope exceeds the client's roles.")
    return sorted(set(asked))


def issue_token(
    *,
    key: SigningKey,
    client: Client,
    roles: list[str],
    issuer: str,
    audience: str,
    ttl: int,
    vault: Vault,
    now: int | None = None,
) -> IssuedToken:
    """An RFC 9068 JWT access token."""
    now = now if now is not None else int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": client.client_id,
        "aud": audience,
        "exp": now + ttl,
        "iat": now,
        "nbf": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": client.client_id,
        "agency": client.agency,
        "roles": roles,
        "scope": " ".join(roles),
    }
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    token = jwt.encode(header, claims, private_key(key, vault), algorithms=[key.alg])
    return IssuedToken(access_token=token, expires_in=ttl, scope=claims["scope"], claims=claims)


# Seeding


async def seed(
    session: AsyncSession, *, agencies: list[AgencySpec], vault: Vault, issuer: str
) -> dict[str, str]:
    """Create missing agencies and their clients, plus `auditor`, `admin`, `analyst`, `dpo`
    and the `console` that signs people in.

    Returns `{client_id: secret}` for the clients created now (empty on a later start).
    """
    created: dict[str, str] = {}
    for agency in agencies:
        if await session.get(Agency, agency.id) is None:
            await create_agency(session, agency=agency, actor="seed")
            await session.flush()
        if await session.get(Client, agency.id) is None:
            _, secret = await create_client(
                session,
                client_id=agency.id,
                agency=agency.id,
                roles=list(AGENCY_ROLES),
                actor="seed",
            )
            created[agency.id] = secret
    for client_id, roles in SYSTEM_CLIENTS.items():
        if await session.get(Client, client_id) is None:
            _, secret = await create_client(
                session, client_id=client_id, agency=client_id, roles=list(roles), actor="seed"
            )
            created[client_id] = secret
    base = issuer.rstrip("/")
    for client_id, (callback, after_logout) in PEOPLE_CLIENTS.items():
        if await session.get(Client, client_id) is None:
            _, secret = await create_client(
                session,
                client_id=client_id,
                agency=client_id,
                roles=[],
                actor="seed",
                redirect_uris=[base + callback],
                post_logout_redirect_uris=[base + after_logout],
            )
            created[client_id] = secret
    await current_signing_key(session, vault=vault)
    return created


async def _announce(
    session: AsyncSession,
    action: str,
    target_type: str,
    target_id: str,
    actor: str | None,
    **details: Any,
) -> None:
    await admin_changed(
        session,
        source=SERVICE,
        action=action,
        target_type=target_type,
        target_id=target_id,
        actor=actor,
        details=details,
    )
