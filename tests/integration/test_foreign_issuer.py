"""Resource-server validation works with another issuer by configuration alone (Keycloak-like:
RS256, `typ: JWT`, JWKS at its own URL), fetched over real HTTP."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey

from contracts.vocabulary import Role
from services.common.auth import InvalidToken, TokenVerifier, verifier_from_settings
from services.common.broker import free_port
from services.common.settings import Settings
from tests.support import wait_for
from tests.tokens import ISSUER as OUR_ISSUER
from tests.tokens import TokenMint

ISSUER = "https://keycloak.example/realms/nrm"
CERTS = "/realms/nrm/protocol/openid-connect/certs"


class ForeignIssuer:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "kc-1"})
        self.fetches = 0
        self.port = free_port()
        app = FastAPI()

        @app.get(CERTS)
        async def certs() -> dict[str, Any]:
            self.fetches += 1
            return {"keys": [self.key.as_dict(private=False)]}

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )

    def token(self, kid: str = "kc-1", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": "nrm-exchange",
            "sub": "f:1234",
            "azp": "ngo-portal",
            "exp": now + 300,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "agency": "ngo-north",
            "roles": ["caseworker"],
            **claims,
        }
        return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, body, self.key)


@pytest.fixture
async def issuer() -> AsyncIterator[ForeignIssuer]:
    foreign = ForeignIssuer()
    task = asyncio.create_task(foreign.server.serve())

    async def started() -> bool:
        return bool(foreign.server.started)

    await wait_for(started, timeout=10, interval=0.01)
    yield foreign
    foreign.server.should_exit = True
    await task


async def test_keycloak_like_issuer_by_configuration(
    issuer: ForeignIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NRM_AUTH_ISSUER", ISSUER)
    monkeypatch.setenv("NRM_AUTH_JWKS_URL", f"http://127.0.0.1:{issuer.port}{CERTS}")
    monkeypatch.setenv("NRM_AUTH_ALGORITHMS", '["RS256"]')
    monkeypatch.setenv("NRM_AUTH_REQUIRE_AT_JWT", "false")
    verifier = verifier_from_settings(Settings())
    principal = await verifier.verify(issuer.token())
    assert principal.agency == "ngo-north"
    assert principal.roles == frozenset({Role.CASEWORKER})
    # Keycloak names the client in `azp` and the person in `sub`.
    assert principal.client_id == "ngo-portal"
    assert principal.subject == "f:1234" and principal.actor == "f:1234"
    await verifier.verify(issuer.token())
    assert issuer.fetches == 1  # cached

    with pytest.raises(InvalidToken, match="unknown signing key"):
        await verifier.verify(issuer.token(kid="kc-rotated"))
    assert issuer.fetches == 2  # an unknown kid refreshes the key set once
    with pytest.raises(InvalidToken, match="invalid claim iss"):
        await verifier.verify(issuer.token(iss="https://other.example"))

    # Our own default (ES256 only, at+jwt) refuses this issuer's tokens.
    monkeypatch.delenv("NRM_AUTH_ALGORITHMS")
    strict = verifier_from_settings(Settings())
    with pytest.raises(InvalidToken, match="algorithm not allowed"):
        await strict.verify(issuer.token())


async def test_unknown_kids_cannot_flood_the_issuer(issuer: ForeignIssuer) -> None:
    verifier = verifier_from_settings(
        Settings(
            auth_issuer=ISSUER,
            auth_jwks_url=f"http://127.0.0.1:{issuer.port}{CERTS}",
            auth_algorithms=["RS256"],
            auth_require_at_jwt=False,
        )
    )
    for i in range(20):
        with pytest.raises(InvalidToken):
            await verifier.verify(issuer.token(kid=f"random-{i}"))
    assert issuer.fetches <= 5


def test_symmetric_algorithms_are_refused() -> None:
    async def jwks() -> dict[str, Any]:
        return {"keys": []}

    for algorithms in (["HS256"], ["none"], ["ES256", "HS512"]):
        with pytest.raises(ValueError, match="not allowed"):
            TokenVerifier(issuer="x", audience="y", jwks=jwks, algorithms=algorithms)


async def test_people_from_another_provider_beside_our_own(
    issuer: ForeignIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bring your own identity provider for people, by configuration alone: our issuer keeps
    signing the systems' tokens, and a trusted issuer (Keycloak-like, its JWKS fetched over
    HTTP) signs people's, with its own claim names mapped to agency and roles."""
    ours = TokenMint()
    trusted = [
        {
            "issuer": ISSUER,
            "jwks_url": f"http://127.0.0.1:{issuer.port}{CERTS}",
            "agency_claim": "org.nrm_agency",
            "roles_claim": "realm_access.roles",
        }
    ]
    monkeypatch.setenv("NRM_AUTH_ISSUER", OUR_ISSUER)
    monkeypatch.setenv("NRM_AUTH_TRUSTED_ISSUERS", json.dumps(trusted))
    verifier = verifier_from_settings(Settings(), jwks=ours.jwks)

    person = await verifier.verify(
        issuer.token(
            sub="5f0c-person",
            preferred_username="aigul.s",
            org={"nrm_agency": "ngo-south"},
            realm_access={"roles": ["caseworker", "offline_access", "uma_authorization"]},
            agency=None,
            roles=None,
        )
    )
    assert person.agency == "ngo-south"
    assert person.roles == frozenset({Role.CASEWORKER})  # the provider's own roles ignored
    assert person.client_id == "ngo-portal" and person.actor == "aigul.s"

    system = await verifier.verify(ours.token("mvd-ctu", "caseworker"))
    assert system.agency == "mvd-ctu" and system.actor == "mvd-ctu" and system.person is None

    with pytest.raises(InvalidToken, match="invalid claim iss"):
        await verifier.verify(issuer.token(iss="https://not-trusted.example"))
    with pytest.raises(InvalidToken, match="agency/roles"):
        await verifier.verify(issuer.token(org={}, agency=None))
