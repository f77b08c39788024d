"""People sign in as themselves, against the running exchange (`nrm up`): the whole OpenID
Connect code flow driven by Authlib's own OAuth client (sign-in form: password, then a TOTP
code computed with pyotp), PKCE, refresh rotation and reuse detection, revocation and logout;
the refusals; the audit trail naming the person; a person's token limited exactly as the same
role's client token; and the sign-in page in a real browser (Debian's chromium)."""

import base64
import html
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.conftest import DATABASES, PG_URL
from tests.e2e.conftest import Exchange, start_exchange
from tests.e2e.test_rules import victim
from tests.support import service_databases, wait_for

pytestmark = pytest.mark.xdist_group("e2e-people")

CALLBACK = "http://127.0.0.1:9/callback"  # never called: the test reads the redirect
AFTER_LOGOUT = "http://127.0.0.1:9/signed-out"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module", params=DATABASES)
def exchange(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Exchange]:
    """One stack per database kind for this module, with a sign-in throttle quick enough to
    see recover (3 failures per person, refilled over 15 s: one failure's worth every 5 s, so
    that a loaded CI machine cannot refill one while the test makes its three)."""
    kind: str = request.param
    data_dir = tmp_path_factory.mktemp(f"people-{kind}")
    env = {
        "NRM_IDENTITY_SIGNIN_FAILURES_PER_PERSON": "3",
        "NRM_IDENTITY_SIGNIN_FAILURE_WINDOW_SECONDS": "15",
        "NRM_IDENTITY_SIGNIN_FAILURES_PER_ADDRESS": "1000",
    }
    with service_databases(PG_URL if kind == "postgresql" else None, "people") as url:
        if url:
            env["NRM_DATABASE_URL"] = url
        yield from start_exchange(kind, data_dir, env)


def people_of(exchange: Exchange) -> dict[str, dict[str, Any]]:
    path = exchange.data_dir / "people.json"
    assert path.stat().st_mode & 0o777 == 0o600
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return data


def code_for(person: dict[str, Any], *, later: bool = False) -> str:
    """The person's current TOTP code; `later`: the next step's (accepted one step early), for
    a second sign-in within the same 30 s (each step's code is good once)."""
    at = datetime.now(UTC) + (timedelta(seconds=30) if later else timedelta())
    return pyotp.TOTP(person["totp_secret"]).at(at)


async def register_client(exchange: Exchange) -> tuple[str, str]:
    client_id = f"test-console-{uuid.uuid4().hex[:8]}"
    async with exchange.client() as c:
        r = await c.post(
            "/v1/admin/clients",
            json={
                "client_id": client_id,
                "agency": client_id,
                "redirect_uris": [CALLBACK],
                "post_logout_redirect_uris": [AFTER_LOGOUT],
            },
            headers=exchange.headers("admin"),
        )
    assert r.status_code == 201, r.text
    return client_id, r.json()["client_secret"]


def form_of(page: str) -> dict[str, str]:
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert action and csrf, page
    return {"action": html.unescape(action.group(1)), "csrf": csrf.group(1)}


class Browser:
    """The person's browser: cookies, no JavaScript, redirects followed by hand."""

    def __init__(self, exchange: Exchange) -> None:
        self.http = httpx.AsyncClient(base_url=exchange.base_url, timeout=30)

    async def __aenter__(self) -> "Browser":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def password(self, url: str, username: str, password: str) -> httpx.Response:
        page = await self.http.get(url)
        assert page.status_code == 200, page.text
        assert 'for="username"' in page.text and 'for="password"' in page.text
        form = form_of(page.text)
        return await self.http.post(
            form["action"],
            data={
                "step": "password",
                "csrf": form["csrf"],
                "username": username,
                "password": password,
            },
        )

    async def code(self, url: str, code: str) -> httpx.Response:
        page = await self.http.get(url)
        assert page.status_code == 200, page.text
        assert 'for="otp"' in page.text and "One-time code" in page.text
        form = form_of(page.text)
        return await self.http.post(
            form["action"], data={"step": "otp", "csrf": form["csrf"], "otp": code}
        )

    async def sign_in(
        self, url: str, person: dict[str, Any], username: str, *, later: bool = False
    ) -> str:
        """Password, then one-time code; returns the redirect to the client (with the code)."""
        r = await self.password(url, username, person["password"])
        assert r.status_code == 303, r.text
        r = await self.code(url, code_for(person, later=later))
        assert r.status_code == 302, r.text
        return r.headers["location"]


def oauth_client(exchange: Exchange, client_id: str, secret: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id,
        secret,
        scope="openid",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        base_url=exchange.base_url,
        timeout=30,
    )


async def person_token(
    exchange: Exchange, username: str, *, later: bool = False, client: tuple[str, str]
) -> dict[str, Any]:
    person = people_of(exchange)[username]
    verifier = generate_token(48)
    async with oauth_client(exchange, *client) as oauth:
        url, _ = oauth.create_authorization_url(
            f"{exchange.base_url}/oauth/authorize", code_verifier=verifier
        )
        async with Browser(exchange) as browser:
            back = await browser.sign_in(url, person, username, later=later)
        token: dict[str, Any] = await oauth.fetch_token(
            f"{exchange.base_url}/oauth/token", authorization_response=back, code_verifier=verifier
        )
    return token


def claims_of(access_token: str) -> dict[str, Any]:
    body = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


async def test_the_whole_code_flow_as_a_person(exchange: Exchange) -> None:
    client = await register_client(exchange)
    username = "ngo-north.referrer"
    person = people_of(exchange)[username]
    assert person["agency"] == "ngo-north" and person["roles"] == ["referrer"]
    verifier = generate_token(48)
    base = exchange.base_url
    async with oauth_client(exchange, *client) as oauth:
        discovery = (
            await oauth.request("GET", "/.well-known/openid-configuration", withhold_token=True)
        ).json()
        assert discovery["code_challenge_methods_supported"] == ["S256"]
        url, state = oauth.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce="n-0S6_WzA2Mj"
        )
        async with Browser(exchange) as browser:
            back = await browser.sign_in(url, person, username)
            assert back.startswith(CALLBACK + "?")
            query = parse_qs(urlsplit(back).query)
            assert query["state"] == [state] and len(query["code"][0]) >= 32

            token = await oauth.fetch_token(
                discovery["token_endpoint"], authorization_response=back, code_verifier=verifier
            )
            assert token["token_type"] == "Bearer" and token["refresh_token"]
            claims = claims_of(token["access_token"])
            assert claims["agency"] == "ngo-north"
            assert claims["roles"] == ["referrer"]
            assert claims["preferred_username"] == username
            assert claims["client_id"] == client[0]
            assert claims["sub"] != client[0] and len(claims["sub"]) == 36
            assert "otp" in claims["amr"] and "pwd" in claims["amr"]
            id_claims = claims_of(token["id_token"])
            assert id_claims["nonce"] == "n-0S6_WzA2Mj" and id_claims["aud"] == client[0]

            # The API as the person: submit, then read what they submitted.
            r = await oauth.post(f"{base}/v1/referrals", json=victim(region="KZ-79"))
            assert r.status_code == 201, r.text
            referral = r.json()["id"]
            r = await oauth.get(f"{base}/v1/referrals/{referral}")
            assert r.status_code == 200 and r.json()["disclosure"] == "full"
            info = (await oauth.get(discovery["userinfo_endpoint"])).json()
            assert info == {
                "sub": claims["sub"],
                "preferred_username": username,
                "agency": "ngo-north",
                "roles": ["referrer"],
            }

            # Refresh: a new access token and a new refresh token (rotated).
            first_refresh = token["refresh_token"]
            refreshed = await oauth.refresh_token(
                discovery["token_endpoint"], refresh_token=first_refresh
            )
            assert refreshed["refresh_token"] != first_refresh
            assert refreshed["access_token"] != token["access_token"]
            assert (await oauth.get(f"{base}/v1/referrals/{referral}")).status_code == 200

            # The old refresh token again: refused, and its family with it.
            async with httpx.AsyncClient(base_url=base, auth=client) as raw:
                again = await raw.post(
                    "/oauth/token",
                    data={"grant_type": "refresh_token", "refresh_token": first_refresh},
                )
                assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
                newest = await raw.post(
                    "/oauth/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": refreshed["refresh_token"],
                    },
                )
                assert newest.status_code == 400 and newest.json()["error"] == "invalid_grant"

            # Signed in at identity still: a new authorization needs no password, and its
            # refresh token can be revoked (RFC 7009), after which it is refused.
            verifier2 = generate_token(48)
            url2, _ = oauth.create_authorization_url(
                discovery["authorization_endpoint"], code_verifier=verifier2
            )
            r = await browser.http.get(url2)
            assert r.status_code == 302 and r.headers["location"].startswith(CALLBACK)
            token2 = await oauth.fetch_token(
                discovery["token_endpoint"],
                authorization_response=r.headers["location"],
                code_verifier=verifier2,
            )
            revoked = await oauth.revoke_token(
                discovery["revocation_endpoint"],
                token=token2["refresh_token"],
                token_type_hint="refresh_token",
            )
            assert revoked.status_code == 200
            async with httpx.AsyncClient(base_url=base, auth=client) as raw:
                r = await raw.post(
                    "/oauth/token",
                    data={"grant_type": "refresh_token", "refresh_token": token2["refresh_token"]},
                )
                assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

            # End session: back to the client, and the next authorization asks to sign in.
            r = await browser.http.get(
                discovery["end_session_endpoint"],
                params={
                    "id_token_hint": token2["id_token"],
                    "post_logout_redirect_uri": AFTER_LOGOUT,
                    "state": "bye",
                },
            )
            assert r.status_code == 302 and r.headers["location"] == AFTER_LOGOUT + "?state=bye"
            r = await browser.http.get(url2)
            assert r.status_code == 200 and 'for="password"' in r.text

    # The audit record names the person: on the referral's timeline and in "who read what".
    async def named() -> bool:
        async with exchange.client() as c:
            r = await c.get(
                f"/v1/audit/referrals/{referral}/timeline", headers=exchange.headers("auditor")
            )
        actors = {(e["type"], e["actor"]) for e in r.json()["events"]}
        return {("referral.submitted", username), ("access.granted", username)} <= actors

    await wait_for(named, timeout=20)
    async with exchange.client() as c:
        r = await c.get(
            "/v1/audit/events",
            params={"actor": username, "type": "access.granted", "limit": 500},
            headers=exchange.headers("auditor"),
        )
    actions = {(e["payload"]["action"], e["payload"].get("resource_id")) for e in r.json()["items"]}
    assert ("referral.read", referral) in actions
    assert ("person.sign_in", claims["sub"]) in actions
    async with exchange.client() as c:
        r = await c.get(
            "/v1/audit/agencies/ngo-north/access",
            params={"actor": username, "limit": 500},
            headers=exchange.headers("auditor"),
        )
    reads = [i for i in r.json()["items"] if i["action"] == "referral.read"]
    assert [(i["actor"], i["resource_id"], i["outcome"]) for i in reads] == [
        (username, referral, "granted"),  # read after submitting
        (username, referral, "granted"),  # and after the refresh
    ]


async def test_refusals(exchange: Exchange) -> None:
    client = await register_client(exchange)
    username = "ngo-south.caseworker"
    person = people_of(exchange)[username]
    base = exchange.base_url
    async with oauth_client(exchange, *client) as oauth:
        # A redirect URI that is not registered: an error page, no redirect.
        url, _ = oauth.create_authorization_url(
            f"{base}/oauth/authorize",
            code_verifier=generate_token(48),
            redirect_uri="http://127.0.0.1:9/elsewhere",
        )
        r = await oauth.request("GET", url, withhold_token=True)
        assert r.status_code == 400 and "location" not in r.headers
        assert "invalid_request" in r.text

        # No PKCE: refused back to the client.
        r = await oauth.request(
            "GET",
            f"{base}/oauth/authorize",
            params={"response_type": "code", "client_id": client[0], "redirect_uri": CALLBACK},
            withhold_token=True,
        )
        assert r.status_code == 302
        assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["invalid_request"]

        verifier = generate_token(48)
        url, _ = oauth.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
        async with Browser(exchange) as browser:
            r = await browser.password(url, username, person["password"])
            assert r.status_code == 303
            # A wrong one-time code, then the right one, then the same one replayed.
            good = code_for(person)
            wrong = f"{(int(good) + 1) % 1_000_000:06d}"
            r = await browser.code(url, wrong)
            assert r.status_code == 401 and "Wrong or already used code." in r.text
            r = await browser.code(url, good)
            assert r.status_code == 302
            back = r.headers["location"]
        async with Browser(exchange) as replay:
            r = await replay.password(url, username, person["password"])
            assert r.status_code == 303
            r = await replay.code(url, good)
            assert r.status_code == 401 and "Wrong or already used code." in r.text

        # A wrong PKCE verifier: refused (and the code is spent).
        code = parse_qs(urlsplit(back).query)["code"][0]
        async with httpx.AsyncClient(base_url=base, auth=client) as raw:
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
            r = await raw.post("/oauth/token", data={**form, "code_verifier": generate_token(48)})
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
            # Replayed: refused too.
            r = await raw.post("/oauth/token", data={**form, "code_verifier": verifier})
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    # A code replayed after a successful exchange: refused, and the tokens it gave revoked.
    verifier = generate_token(48)
    async with oauth_client(exchange, *client) as oauth:
        url, _ = oauth.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
        async with Browser(exchange) as browser:
            back = await browser.sign_in(url, person, username, later=True)
        token = await oauth.fetch_token(
            f"{base}/oauth/token", authorization_response=back, code_verifier=verifier
        )
    code = parse_qs(urlsplit(back).query)["code"][0]
    async with httpx.AsyncClient(base_url=base, auth=client) as raw:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        }
        r = await raw.post("/oauth/token", data=form)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        r = await raw.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_disabled_person_refused_at_once(exchange: Exchange) -> None:
    client = await register_client(exchange)
    async with exchange.client() as c:
        r = await c.post(
            "/v1/admin/people",
            json={"username": f"temp.{uuid.uuid4().hex[:6]}", "agency": "gp", "roles": ["auditor"]},
            headers=exchange.headers("admin"),
        )
        assert r.status_code == 201, r.text
        created = r.json()
    # An auditor needs no second factor: password only.
    assert created["second_factor"] is False and len(created["password"]) >= 12
    verifier = generate_token(48)
    async with oauth_client(exchange, *client) as oauth:
        url, _ = oauth.create_authorization_url(
            f"{exchange.base_url}/oauth/authorize", code_verifier=verifier
        )
        async with Browser(exchange) as browser:
            r = await browser.password(url, created["username"], created["password"])
            assert r.status_code == 303
            r = await browser.http.get(url)
            assert r.status_code == 302
        token = await oauth.fetch_token(
            f"{exchange.base_url}/oauth/token",
            authorization_response=r.headers["location"],
            code_verifier=verifier,
        )
        assert claims_of(token["access_token"])["amr"] == ["pwd"]
        assert (await oauth.get("/v1/audit/events", params={"limit": 1})).status_code == 200

        async with exchange.client() as c:
            r = await c.post(
                f"/v1/admin/people/{created['id']}/disable", headers=exchange.headers("admin")
            )
            assert r.status_code == 200 and r.json()["disabled"] is True

        async def refused() -> bool:
            r: httpx.Response = await oauth.get("/v1/audit/events", params={"limit": 1})
            return r.status_code == 401

        await wait_for(refused, timeout=5)
    async with httpx.AsyncClient(base_url=exchange.base_url, auth=client) as raw:
        r = await raw.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    async with Browser(exchange) as browser:  # and no new sign-in
        r = await browser.password(url, created["username"], created["password"])
        assert r.status_code == 401 and "Wrong username or password." in r.text


async def test_enrolment_by_qr_code_and_recovery_codes(exchange: Exchange) -> None:
    client = await register_client(exchange)
    async with exchange.client() as c:
        r = await c.post(
            "/v1/admin/people",
            json={
                "username": f"ngo-north.new{uuid.uuid4().hex[:6]}",
                "agency": "ngo-north",
                "roles": ["caseworker"],
            },
            headers=exchange.headers("admin"),
        )
        assert r.status_code == 201, r.text
    created = r.json()
    username, password = created["username"], created["password"]
    async with oauth_client(exchange, *client) as oauth:
        url, _ = oauth.create_authorization_url(
            f"{exchange.base_url}/oauth/authorize", code_verifier=generate_token(48)
        )

    async def enrol(browser: Browser) -> str:
        r = await browser.password(url, username, password)
        assert r.status_code == 303
        page = await browser.http.get(url)
        assert page.status_code == 200
        assert '<img class="qr" src="data:image/svg+xml;base64,' in page.text
        key = re.search(r"<code>([A-Z2-7]{32})</code>", page.text)
        assert key, page.text
        return key.group(1)

    async with Browser(exchange) as browser:
        secret = await enrol(browser)
        page = await browser.http.get(url)
        form = form_of(page.text)
        r = await browser.http.post(
            form["action"],
            data={"step": "otp", "csrf": form["csrf"], "otp": pyotp.TOTP(secret).now()},
        )
        assert r.status_code == 200, r.text
        codes = re.findall(r"<li>([0-9a-f]{8}-[0-9a-f]{8})</li>", r.text)
        assert len(codes) == 10
        r = await browser.http.get(url)  # "Continue"
        assert r.status_code == 302 and r.headers["location"].startswith(CALLBACK)
    async with exchange.client() as c:
        r = await c.get(f"/v1/admin/people/{created['id']}", headers=exchange.headers("admin"))
        assert r.json()["second_factor"] is True
        # The username names the same person (as `nrm people` does).
        r = await c.get(f"/v1/admin/people/{username}", headers=exchange.headers("admin"))
        assert r.status_code == 200 and r.json()["id"] == created["id"]

    # A recovery code stands in for the one-time code, once.
    async with Browser(exchange) as browser:
        assert (await browser.password(url, username, password)).status_code == 303
        r = await browser.code(url, codes[0])
        assert r.status_code == 302 and r.headers["location"].startswith(CALLBACK)
    async with Browser(exchange) as browser:
        assert (await browser.password(url, username, password)).status_code == 303
        r = await browser.code(url, codes[0])
        assert r.status_code == 401

    # Reset by an administrator: enrolled afresh at the next sign-in, with a new key.
    async with exchange.client() as c:
        r = await c.post(
            f"/v1/admin/people/{created['id']}/reset",
            json={"second_factor": True},
            headers=exchange.headers("admin"),
        )
        assert r.status_code == 200 and r.json()["second_factor"] is False
    async with Browser(exchange) as browser:
        assert await enrol(browser) != secret


async def test_failed_sign_ins_throttled_then_recover(exchange: Exchange) -> None:
    client = await register_client(exchange)
    username = "labour-insp.supervisor"
    person = people_of(exchange)[username]
    async with oauth_client(exchange, *client) as oauth:
        url, _ = oauth.create_authorization_url(
            f"{exchange.base_url}/oauth/authorize", code_verifier=generate_token(48)
        )
    async with Browser(exchange) as browser:
        for _ in range(3):
            r = await browser.password(url, username, "not-the-password-at-all")
            assert r.status_code == 401 and "Wrong username or password." in r.text
        r = await browser.password(url, username, person["password"])  # right, but throttled
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1

        async def recovered() -> bool:
            r = await browser.password(url, username, person["password"])
            assert r.status_code in (303, 429)
            return r.status_code == 303

        await wait_for(recovered, timeout=20, interval=0.5)

    async def audited() -> bool:
        async with exchange.client() as c:
            r = await c.get(
                "/v1/audit/events",
                params={"actor": username, "type": "auth.failed", "limit": 100},
                headers=exchange.headers("auditor"),
            )
        reasons = {e["payload"]["reason"] for e in r.json()["items"]}
        return {
            "sign-in: wrong username or password",
            "sign-in throttled after repeated failures",
        } <= reasons

    await wait_for(audited, timeout=20)


async def test_failures_under_a_name_do_not_lock_its_person_out_of_their_browser(
    exchange: Exchange,
) -> None:
    """OWASP's device cookie: a browser in which the person signed in has its own allowance.
    Someone failing under their username elsewhere is throttled there, also with a made-up
    cookie, while the person still signs in in their browser; failures there throttle it."""
    client = await register_client(exchange)
    username = "anti-corruption.caseworker"
    person = people_of(exchange)[username]
    async with oauth_client(exchange, *client) as oauth:
        first, _ = oauth.create_authorization_url(
            f"{exchange.base_url}/oauth/authorize", code_verifier=generate_token(48)
        )
        # Asks for the password again within the browser's sign-in session.
        url = f"{first}&prompt=login"
    async with Browser(exchange) as own, Browser(exchange) as hostile:
        await own.sign_in(first, person, username)
        device = own.http.cookies.get("nrm_device", path="/oauth/")
        assert device is not None and username not in device
        for _ in range(3):
            r = await hostile.password(url, username, "not-the-password-at-all")
            assert r.status_code == 401 and "Wrong username or password." in r.text
        r = await hostile.password(url, username, person["password"])
        assert r.status_code == 429
        host = httpx.URL(exchange.base_url).host
        forged = f"{device.split('.')[0]}.{'A' * 43}"  # the person's nonce, a guessed proof
        for cookie in (forged, "made-up.value"):
            hostile.http.cookies.set("nrm_device", cookie, domain=host, path="/oauth/")
            r = await hostile.password(url, username, person["password"])
            assert r.status_code == 429, cookie

        r = await own.password(url, username, person["password"])
        assert r.status_code == 303, r.text
        for _ in range(3):
            r = await own.password(url, username, "not-the-password-at-all")
            assert r.status_code == 401
        r = await own.password(url, username, person["password"])
        assert r.status_code == 429


# Per role: (person, client id, scope) and the statuses both tokens must get.
ENDPOINTS = (
    "/v1/referrals",
    "/v1/inbox",
    "/v1/routing/policy",
    "/v1/audit/events?limit=1",
    "/v1/admin/clients",
    "/v1/admin/people",
)
ROLES: dict[str, tuple[str, str, str | None, tuple[int, ...]]] = {
    "referrer": (
        "child-rights.referrer",
        "child-rights",
        "referrer",
        (200, 404, 404, 404, 404, 404),
    ),
    "caseworker": (
        "child-rights.caseworker",
        "child-rights",
        "caseworker",
        (200, 200, 404, 404, 404, 404),
    ),
    "supervisor": (
        "child-rights.supervisor",
        "child-rights",
        "supervisor",
        (200, 200, 404, 404, 404, 200),
    ),
    "auditor": ("auditor", "auditor", None, (404, 404, 200, 200, 404, 404)),
    "admin": ("admin", "admin", None, (404, 404, 200, 404, 200, 200)),
    "analyst": ("analyst", "analyst", None, (404, 404, 404, 404, 404, 404)),
    "dpo": ("dpo", "dpo", None, (404, 404, 404, 404, 404, 404)),
}


@pytest.mark.parametrize("role", list(ROLES))
async def test_a_persons_token_is_limited_as_the_roles_client_token(
    exchange: Exchange, role: str
) -> None:
    username, client_id, scope, expected = ROLES[role]
    console = await register_client(exchange)
    person = await person_token(exchange, username, client=console)
    assert claims_of(person["access_token"])["roles"] == [role]
    async with exchange.client() as c:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        r = await c.post("/oauth/token", data=form, auth=(client_id, exchange.secrets[client_id]))
        assert r.status_code == 200, r.text
        system = r.json()["access_token"]
        for token, who in ((person["access_token"], "person"), (system, "client")):
            got = tuple(
                [
                    (await c.get(path, headers={"Authorization": f"Bearer {token}"})).status_code
                    for path in ENDPOINTS
                ]
            )
            assert got == expected, (who, got)


async def test_supervisor_manages_own_agency_only(exchange: Exchange) -> None:
    console = await register_client(exchange)
    token = await person_token(exchange, "ngo-south.supervisor", client=console)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    name = f"ngo-south.new{uuid.uuid4().hex[:6]}"
    async with exchange.client() as c:
        r = await c.post(
            "/v1/admin/people",
            json={"username": name, "agency": "ngo-south", "roles": ["caseworker"]},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        # Weak passwords are refused: too short, and too common.
        for weak in ("short", "password1234"):
            r = await c.post(
                "/v1/admin/people",
                json={
                    "username": f"{name}x",
                    "agency": "ngo-south",
                    "roles": ["caseworker"],
                    "password": weak,
                },
                headers=headers,
            )
            assert r.status_code == 422, r.text
        r = await c.post(
            "/v1/admin/people",
            json={"username": f"{name}y", "agency": "ngo-north", "roles": ["caseworker"]},
            headers=headers,
        )
        assert r.status_code == 404
        r = await c.post(
            "/v1/admin/people",
            json={"username": f"{name}z", "agency": "ngo-south", "roles": ["admin"]},
            headers=headers,
        )
        assert r.status_code == 422
        r = await c.get("/v1/admin/people", headers=headers)
        assert {p["agency"] for p in r.json()["items"]} == {"ngo-south"}
        other = next(
            p
            for p in (await c.get("/v1/admin/people", headers=exchange.headers("admin"))).json()[
                "items"
            ]
            if p["username"] == "ngo-north.caseworker"
        )
        r = await c.post(f"/v1/admin/people/{other['id']}/disable", headers=headers)
        assert r.status_code == 404


async def test_sign_in_page_in_a_real_browser(exchange: Exchange) -> None:
    from playwright.async_api import async_playwright  # .ci/run installs Debian's chromium

    client = await register_client(exchange)
    username = "gp.caseworker"
    person = people_of(exchange)[username]
    async with oauth_client(exchange, *client) as oauth:
        url, _ = oauth.create_authorization_url(
            f"{exchange.base_url}/oauth/authorize",
            code_verifier=generate_token(48),
            lang="en",
        )
    outside: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page()

            def watch(request: Any) -> None:
                if not request.url.startswith(exchange.base_url):
                    outside.append(request.url)

            page.on("request", watch)
            await page.goto(url)
            await page.get_by_label("Username").fill(username)
            await page.get_by_label("Password").fill(person["password"])
            await page.get_by_role("button", name="Sign in").click()
            await page.get_by_label("One-time code").fill(code_for(person))
            async with page.expect_request(lambda r: r.url.startswith(CALLBACK)) as redirected:
                await page.get_by_role("button", name="Sign in").click()
            assert "code=" in (await redirected.value).url
            # The Russian page (a new browser, not signed in) labels its fields too.
            fresh = await (await browser.new_context()).new_page()
            fresh.on("request", watch)
            await fresh.goto(url.replace("lang=en", "lang=ru"))
            assert await fresh.get_by_label("Имя пользователя").count() == 1
            assert await fresh.get_by_label("Пароль").count() == 1
            assert await fresh.get_by_role("button", name="Войти").count() == 1
        finally:
            await browser.close()
    assert [u for u in outside if not u.startswith(CALLBACK)] == []


async def test_a_refresh_token_another_client_presents_is_refused_and_spent(
    exchange: Exchange,
) -> None:
    """A refresh token is bound to the client it was issued to (RFC 6749 §6): another client,
    authenticated, gets `invalid_grant`. The token has leaked, so it is spent: its own client's
    next refresh is refused too, and the person signs in again."""
    own = await register_client(exchange)
    other = await register_client(exchange)
    token = await person_token(exchange, "mvd-ctu.supervisor", client=own)
    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    async with httpx.AsyncClient(base_url=exchange.base_url, auth=other) as raw:
        r = await raw.post("/oauth/token", data=refresh)
        assert (r.status_code, r.json()) == (400, {"error": "invalid_grant"})
    async with httpx.AsyncClient(base_url=exchange.base_url, auth=own) as raw:
        r = await raw.post("/oauth/token", data=refresh)
        assert (r.status_code, r.json()) == (400, {"error": "invalid_grant"})
