"""Identity: tokens for agencies, every rejection path, the role x endpoint matrix, rotation."""

import base64
import contextlib
import hashlib
import hmac
import json
import stat
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet

from contracts.vocabulary import Role
from services.common.broker import EmbeddedBroker
from services.common.crypto import Vault
from services.common.permissions import Action
from services.identity import service
from services.identity.app import create_app
from services.identity.models import SigningKey
from services.identity.settings import IdentitySettings
from tests.support import EXAMPLE_AGENCIES, Database, outbox_payloads, wait_for

CONFIG = Path(__file__).parents[2] / "deploy" / "config" / "agencies.yaml"
ISSUER = "https://id.test"
AUDIENCE = "nrm-test"


@dataclass
class Identity:
    client: httpx.AsyncClient
    credentials: dict[str, str]
    db: Database
    credentials_file: Path
    vault: Vault

    async def token(self, client_id: str, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        r = await self.client.post(
            "/oauth/token", data=data, auth=(client_id, self.credentials[client_id])
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        return await outbox_payloads(self.db, event_type)

    async def signing_key(self) -> tuple[str, ECKey]:
        async with self.db.sessions() as session:
            row = await service.current_signing_key(session, vault=self.vault)
        return row.kid, service.private_key(row, self.vault)


@contextlib.asynccontextmanager
async def _identity(
    db: Database, broker: EmbeddedBroker, tmp_path: Path, **settings: Any
) -> AsyncIterator[Identity]:
    config = IdentitySettings(
        data_dir=tmp_path / "var",
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        auth_leeway_seconds=0,
        **settings,
    )
    creds = tmp_path / "var" / "credentials.json"
    app = create_app(
        config,
        bootstrap=broker.bootstrap,
        engine=db.engine,
        seed_from=CONFIG,
        credentials_file=creds,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            yield Identity(client, json.loads(creds.read_text()), db, creds, app.state.vault)


@pytest.fixture
async def identity(db: Database, broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Identity]:
    async with _identity(db, broker, tmp_path) as i:
        yield i


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "admin",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "jti": uuid.uuid4().hex,
        "client_id": "admin",
        "agency": "admin",
        "roles": ["admin"],
        "scope": "admin",
    }
    claims.update(overrides)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Token endpoint


async def test_seeded_clients_get_rfc9068_tokens(identity: Identity) -> None:
    # DESIGN.md: one client per agency, `auditor`, `admin`, `analyst`, `dpo`, and the console.
    assert set(identity.credentials) == EXAMPLE_AGENCIES | {
        "auditor",
        "admin",
        "analyst",
        "dpo",
        "console",
    }
    assert stat.S_IMODE(identity.credentials_file.stat().st_mode) == 0o600
    basic = await identity.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("labour-insp", identity.credentials["labour-insp"]),
    )
    form = await identity.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "labour-insp",
            "client_secret": identity.credentials["labour-insp"],
            "scope": "referrer",
        },
    )
    assert basic.status_code == form.status_code == 200
    assert basic.headers["cache-control"] == "no-store"
    body = basic.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "caseworker referrer supervisor"
    assert form.json()["scope"] == "referrer"

    jwks = (await identity.client.get("/.well-known/jwks.json")).json()
    token = jwt.decode(body["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert token.header["typ"] == "at+jwt" and token.header["alg"] == "ES256"
    claims = token.claims
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["sub"] == claims["client_id"] == "labour-insp"
    assert claims["agency"] == "labour-insp"
    assert claims["roles"] == ["caseworker", "referrer", "supervisor"]
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    meta = (await identity.client.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == ISSUER
    assert meta["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert meta["grant_types_supported"] == [
        "client_credentials",
        "authorization_code",
        "refresh_token",
    ]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert (await identity.events("access.granted"))[-1]["action"] == "token.issue"


async def test_second_start_keeps_credentials_and_writes_no_new_secrets(
    db: Database, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    async with _identity(db, broker, tmp_path) as first:
        before = first.credentials
    async with _identity(db, broker, tmp_path) as second:
        assert second.credentials == before
        assert await second.token("gp")


TOKEN_REJECTIONS = [
    # (form data, auth, status, error)
    ({"grant_type": "client_credentials"}, ("gp", "wrong-secret"), 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, ("nobody", "x"), 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
    (
        {"grant_type": "password", "username": "u", "password": "p"},
        "gp",
        400,
        "unsupported_grant_type",
    ),
    ({}, "gp", 400, "invalid_request"),
    ({"grant_type": "client_credentials", "scope": "admin"}, "gp", 400, "invalid_scope"),
]


@pytest.mark.parametrize(("data", "auth", "status", "error"), TOKEN_REJECTIONS)
async def test_token_request_rejections(
    identity: Identity, data: dict[str, str], auth: Any, status: int, error: str
) -> None:
    if isinstance(auth, str):
        auth = (auth, identity.credentials[auth])
    r = await identity.client.post("/oauth/token", data=data, auth=auth)
    assert r.status_code == status
    assert r.json()["error"] == error
    assert r.headers["cache-control"] == "no-store"
    if status == 401:
        assert r.headers["www-authenticate"] == 'Basic realm="nrm"'
        assert (await identity.events("auth.failed"))[-1]["reason"]
    assert "access_token" not in r.text


async def test_token_request_must_be_form_encoded(identity: Identity) -> None:
    r = await identity.client.post(
        "/oauth/token",
        json={"grant_type": "client_credentials"},
        auth=("gp", identity.credentials["gp"]),
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


async def test_disabled_client_and_disabled_agency_get_no_new_tokens(identity: Identity) -> None:
    admin = {"Authorization": f"Bearer {await identity.token('admin')}"}
    assert (await identity.client.post("/v1/admin/clients/gp/disable", headers=admin)).is_success
    r = await identity.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("gp", identity.credentials["gp"]),
    )
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    r = await identity.client.post("/v1/admin/agencies/ngo-north/disable", headers=admin)
    assert r.is_success
    r = await identity.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("ngo-north", identity.credentials["ngo-north"]),
    )
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    changes = [(e["action"], e["target_id"]) for e in await identity.events("admin.changed")]
    assert ("client.disabled", "gp") in changes
    assert ("agency.disabled", "ngo-north") in changes


# Bearer token validation (resource-server side), on an admin endpoint


async def _forged(identity: Identity, case: str) -> dict[str, str]:
    kid, key = await identity.signing_key()
    header = {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    now = int(time.time())
    if case == "missing":
        return {}
    if case == "malformed":
        return {"Authorization": "Bearer not.a.jwt"}
    if case == "not_bearer":
        return {"Authorization": "Basic YWRtaW46eA=="}
    if case == "wrong_signature":
        other = ECKey.generate_key("P-256")
        return {"Authorization": f"Bearer {jwt.encode(header, _claims(), other)}"}
    if case == "alg_none":
        h = _b64(json.dumps({"alg": "none", "kid": kid, "typ": "at+jwt"}).encode())
        p = _b64(json.dumps(_claims()).encode())
        return {"Authorization": f"Bearer {h}.{p}."}
    if case == "hs256_with_public_key":
        public = json.dumps(key.as_dict(private=False)).encode()
        h = _b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "at+jwt"}).encode())
        p = _b64(json.dumps(_claims()).encode())
        sig = _b64(hmac.new(public, f"{h}.{p}".encode(), hashlib.sha256).digest())
        return {"Authorization": f"Bearer {h}.{p}.{sig}"}
    claims = {
        "expired": _claims(exp=now - 10, iat=now - 100, nbf=now - 100),
        "not_yet_valid": _claims(nbf=now + 3600),
        "wrong_audience": _claims(aud="someone-else"),
        "wrong_issuer": _claims(iss="https://evil.test"),
        "no_agency": {k: v for k, v in _claims().items() if k != "agency"},
        "wrong_typ": _claims(),
        "unknown_kid": _claims(),
    }[case]
    if case == "unknown_kid":
        header = {**header, "kid": "no-such-key"}
    if case == "wrong_typ":
        header = {**header, "typ": "JWT"}
    return {"Authorization": f"Bearer {jwt.encode(header, claims, key)}"}


BEARER_REJECTIONS = [
    "missing",
    "malformed",
    "not_bearer",
    "wrong_signature",
    "alg_none",
    "hs256_with_public_key",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "wrong_issuer",
    "unknown_kid",
    "no_agency",
    "wrong_typ",
]


@pytest.mark.parametrize("case", BEARER_REJECTIONS)
async def test_bearer_token_rejections(identity: Identity, case: str) -> None:
    headers = await _forged(identity, case)
    before = len(await identity.events("auth.failed"))
    r = await identity.client.get("/v1/admin/clients", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith('Bearer realm="nrm"')
    if case not in ("missing", "not_bearer"):
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert "client_id" not in r.text
    failures = await identity.events("auth.failed")
    assert len(failures) == before + 1
    assert failures[-1]["path"] == "/v1/admin/clients"


async def test_a_valid_forged_control_token_is_accepted(identity: Identity) -> None:
    """The forging helper itself makes acceptable tokens when nothing is wrong with them."""
    kid, key = await identity.signing_key()
    token = jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, _claims(), key)
    r = await identity.client.get("/v1/admin/clients", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


# Role x endpoint matrix


ROLE_CLIENTS = {
    Role.REFERRER: ("gp", "referrer"),
    Role.CASEWORKER: ("gp", "caseworker"),
    Role.SUPERVISOR: ("gp", "supervisor"),
    Role.AUDITOR: ("auditor", None),
    Role.ADMIN: ("admin", None),
}


def _endpoints() -> list[tuple[str, str, Action, Any]]:
    unique = uuid.uuid4().hex[:8]
    return [
        ("GET", "/v1/admin/agencies", Action.AGENCY_ADMIN, None),
        (
            "POST",
            "/v1/admin/agencies",
            Action.AGENCY_ADMIN,
            {"id": f"ngo-{unique}", "name": "New NGO", "type": "shelter"},
        ),
        ("POST", "/v1/admin/agencies/gp/enable", Action.AGENCY_ADMIN, None),
        ("POST", "/v1/admin/agencies/child-rights/disable", Action.AGENCY_ADMIN, None),
        ("GET", "/v1/admin/clients", Action.CLIENT_ADMIN, None),
        (
            "POST",
            "/v1/admin/clients",
            Action.CLIENT_ADMIN,
            {"client_id": f"gp-{unique}", "agency": "gp", "roles": ["caseworker"]},
        ),
        ("POST", "/v1/admin/clients/mvd-ctu/rotate", Action.CLIENT_ADMIN, None),
        ("POST", "/v1/admin/clients/ngo-south/disable", Action.CLIENT_ADMIN, None),
        ("POST", "/v1/admin/keys/rotate", Action.KEY_ADMIN, None),
    ]


@pytest.mark.parametrize("role", list(ROLE_CLIENTS))
@pytest.mark.parametrize("endpoint", range(len(_endpoints())))
async def test_role_endpoint_matrix(identity: Identity, role: Role, endpoint: int) -> None:
    method, path, action, body = _endpoints()[endpoint]
    client_id, scope = ROLE_CLIENTS[role]
    token = await identity.token(client_id, scope)
    denied_before = len(await identity.events("access.denied"))
    r = await identity.client.request(
        method, path, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    # Written out, not computed from the permission table under test: every identity admin
    # action (agencies, clients, keys) is the admin's alone.
    if role is Role.ADMIN:
        assert r.status_code in (200, 201), r.text
    else:
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        denials = await identity.events("access.denied")
        assert len(denials) == denied_before + 1
        assert denials[-1]["action"] == action.value
        assert denials[-1]["client_id"] == client_id


async def test_public_endpoints_need_no_token(identity: Identity) -> None:
    for path in ("/.well-known/jwks.json", "/.well-known/oauth-authorization-server", "/healthz"):
        assert (await identity.client.get(path)).status_code == 200


# Administration


async def test_admin_creates_client_that_can_get_a_token(identity: Identity) -> None:
    admin = {"Authorization": f"Bearer {await identity.token('admin')}"}
    r = await identity.client.post(
        "/v1/admin/clients",
        json={"client_id": "gp-desk-2", "agency": "gp", "roles": ["caseworker"]},
        headers=admin,
    )
    assert r.status_code == 201
    secret = r.json()["client_secret"]
    identity.credentials["gp-desk-2"] = secret
    assert await identity.token("gp-desk-2")
    dup = await identity.client.post(
        "/v1/admin/clients",
        json={"client_id": "gp-desk-2", "agency": "gp", "roles": ["caseworker"]},
        headers=admin,
    )
    assert dup.status_code == 409
    bad = await identity.client.post(
        "/v1/admin/clients",
        json={"client_id": "x", "agency": "no-such", "roles": ["caseworker"]},
        headers=admin,
    )
    assert bad.status_code == 422
    invalid = await identity.client.post(
        "/v1/admin/clients",
        json={"client_id": "x", "agency": "gp", "roles": ["god"]},
        headers=admin,
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["path"] == "roles/0"
    # The dpo approves what a supervisor asks for: one account may not hold both.
    both = await identity.client.post(
        "/v1/admin/clients",
        json={"client_id": "x", "agency": "nrm-coordinator", "roles": ["supervisor", "dpo"]},
        headers=admin,
    )
    assert both.status_code == 422
    assert both.json()["errors"] == [
        {
            "path": "roles",
            "type": "roles_combined",
            "message": "dpo approves what others request: give it an account of its own",
        }
    ]
    rotated = await identity.client.post("/v1/admin/clients/gp-desk-2/rotate", headers=admin)
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret
    old = await identity.client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("gp-desk-2", secret)
    )
    assert old.status_code == 401
    listed = (await identity.client.get("/v1/admin/clients?agency=gp", headers=admin)).json()
    assert {c["client_id"] for c in listed["items"]} == {"gp", "gp-desk-2"}
    assert "secret" not in json.dumps(listed)
    changes = [e["action"] for e in await identity.events("admin.changed")]
    assert "client.created" in changes and "client.secret_rotated" in changes


# Key rotation


async def test_key_rotation_keeps_old_tokens_until_they_expire(
    db: Database, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    async with _identity(db, broker, tmp_path, token_ttl_seconds=2) as identity:
        admin = {"Authorization": f"Bearer {await identity.token('admin')}"}
        old_token = await identity.token("admin")
        r = await identity.client.post("/v1/admin/keys/rotate", headers=admin)
        assert r.status_code == 200
        new_kid = r.json()["kid"]
        kids = {
            k["kid"] for k in (await identity.client.get("/.well-known/jwks.json")).json()["keys"]
        }
        assert len(kids) == 2 and new_kid in kids
        old = {"Authorization": f"Bearer {old_token}"}
        assert (await identity.client.get("/v1/admin/clients", headers=old)).status_code == 200
        new_token = await identity.token("admin")
        assert jws.extract_compact(new_token.encode()).protected["kid"] == new_kid
        new = {"Authorization": f"Bearer {new_token}"}
        assert (await identity.client.get("/v1/admin/clients", headers=new)).status_code == 200

        async def old_rejected() -> bool:
            r = await identity.client.get("/v1/admin/clients", headers=old)
            return r.status_code == 401

        await wait_for(old_rejected, timeout=10, interval=0.2)
        assert (await identity.client.get("/v1/admin/clients", headers=new)).status_code in (
            200,
            401,  # the new token has a 2 s life too
        )

        async def only_new_key_published() -> bool:
            keys = (await identity.client.get("/.well-known/jwks.json")).json()["keys"]
            return [k["kid"] for k in keys] == [new_kid]

        # The retired key leaves the JWKS once every token it signed has expired.
        await wait_for(only_new_key_published, timeout=10, interval=0.2)


async def test_signing_keys_are_sealed_at_rest(identity: Identity) -> None:
    kid, key = await identity.signing_key()
    private_d = str(key.as_dict(private=True)["d"]).encode()
    async with identity.db.sessions() as session:
        row = await session.get(SigningKey, kid)
    assert row is not None
    stored = row.sealed_private + row.wrapped_key + json.dumps(row.public_jwk).encode()
    assert private_d not in stored
    assert "d" not in row.public_jwk
