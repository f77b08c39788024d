"""Hardening, against the running exchange (`nrm up`) over HTTP only, as a hostile user tries it:
revocation that bites on every service at once, a disabled agency routed around, every
object-level refusal on the audit record, webhook host tricks refused at registration, and the
security headers and API documents on every response."""

import asyncio
import base64
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SQLITE_ONLY, Exchange
from tests.e2e.test_rules import victim
from tests.support import wait_for

pytestmark = [pytest.mark.xdist_group("e2e-hardening"), SQLITE_ONLY]

# One endpoint of each service that a client holding every role may use (200).
EVERY_SERVICE = {
    "identity": "/v1/admin/agencies",
    "intake": "/v1/referrals",
    "router": "/v1/routing/policy",
    "notify": "/v1/inbox",
    "audit": "/v1/audit/events?limit=1",
}
ALL_ROLES = ["admin", "auditor", "referrer", "caseworker", "supervisor"]


async def token(c: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await c.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )


def bearer(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def statuses(c: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    return {
        s: (await c.get(path, headers=headers)).status_code for s, path in EVERY_SERVICE.items()
    }


async def test_a_disabled_clients_old_token_is_refused_everywhere_within_5s(
    exchange: Exchange,
) -> None:
    admin = exchange.headers("admin")
    async with exchange.client() as c:
        client_id = f"probe-{exchange.kind}"
        r = await c.post(
            "/v1/admin/clients",
            json={"client_id": client_id, "agency": "ngo-north", "roles": ALL_ROLES},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        secret = r.json()["client_secret"]
        old = bearer(await token(c, client_id, secret))
        assert await statuses(c, old) == dict.fromkeys(EVERY_SERVICE, 200)

        # An inbox stream opened before the disable must end too, not go on delivering.
        async with (
            exchange.client() as streamer,
            streamer.stream("GET", "/v1/inbox/stream", headers=old) as stream,
        ):
            assert stream.status_code == 200
            chunks = stream.aiter_bytes()
            assert (await anext(chunks)).startswith(b"retry:")

            r = await c.post(f"/v1/admin/clients/{client_id}/disable", headers=admin)
            assert r.status_code == 200 and r.json()["disabled"] is True

            async def drained() -> None:
                async for _ in chunks:
                    pass

            await asyncio.wait_for(drained(), timeout=5)

        async def refused_everywhere() -> bool:
            return await statuses(c, old) == dict.fromkeys(EVERY_SERVICE, 401)

        await wait_for(refused_everywhere, timeout=5)
        r = await c.get("/v1/inbox", headers=old)
        assert r.headers["content-type"] == "application/problem+json"
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        # No new token either.
        r = await token(c, client_id, secret)
        assert (r.status_code, r.json()["error"]) == (401, "invalid_client")

        # Enabled again: a new token works everywhere; the old one stays refused.
        r = await c.post(f"/v1/admin/clients/{client_id}/enable", headers=admin)
        assert r.status_code == 200 and r.json()["disabled"] is False
        new = bearer(await token(c, client_id, secret))

        async def new_accepted_everywhere() -> bool:
            return await statuses(c, new) == dict.fromkeys(EVERY_SERVICE, 200)

        await wait_for(new_accepted_everywhere, timeout=5)
        assert await statuses(c, old) == dict.fromkeys(EVERY_SERVICE, 401)

        # Both are on the audit record.
        async def audited() -> list[tuple[str, str, str]]:
            r = await c.get(
                "/v1/audit/events",
                params={"type": ["access.revoked", "access.restored"], "limit": 500},
                headers=exchange.headers("auditor"),
            )
            return [
                (e["type"], e["payload"]["subject_type"], e["payload"]["actor"])
                for e in r.json()["items"]
                if e["payload"]["subject_id"] == client_id
            ]

        async def both() -> bool:
            return len(await audited()) == 2

        await wait_for(both, timeout=30)
        assert await audited() == [
            ("access.revoked", "client", "admin"),
            ("access.restored", "client", "admin"),
        ]


async def explain(c: httpx.AsyncClient, ex: Exchange, body: dict[str, Any]) -> dict[str, Any]:
    r = await c.post("/v1/routing/explain", json=body, headers=ex.headers("labour-insp"))
    assert r.status_code == 200, r.text
    return {x["agency"]: (x["disclosure"], x["rule"]) for x in r.json()["recipients"]}


async def test_a_disabled_ngos_region_goes_to_the_fallback_until_it_is_enabled(
    exchange: Exchange,
) -> None:
    admin = exchange.headers("admin")
    body = victim(region="KZ-71", law_enforcement=True)  # Astana: ngo-north's region
    shelter = {"ngo-north": ("support", "services-shelter"), "mvd-ctu": ("full", "police")}
    fallback = {"nrm-coordinator": ("support", "services-shelter"), "mvd-ctu": ("full", "police")}
    async with exchange.client() as c:
        assert await explain(c, exchange, body) == shelter
        before = bearer(await token(c, "ngo-north", exchange.secrets["ngo-north"]))
        try:
            r = await c.post("/v1/admin/agencies/ngo-north/disable", headers=admin)
            assert r.status_code == 200 and r.json()["disabled"] is True

            async def routed_around() -> bool:
                return await explain(c, exchange, body) == fallback

            await wait_for(routed_around, timeout=5)
            r = await c.post("/v1/referrals", json=body, headers=exchange.headers("labour-insp"))
            assert r.status_code == 201, r.text
            rid = r.json()["id"]

            async def status() -> dict[str, tuple[str, str]]:
                r = await c.get(
                    f"/v1/referrals/{rid}/status", headers=exchange.headers("labour-insp")
                )
                return {x["agency"]: (x["disclosure"], x["rule"]) for x in r.json()["recipients"]}

            async def decided() -> bool:
                return bool(await status())

            await wait_for(decided, timeout=30)
            assert await status() == fallback
            # The agency's clients get no token, and their old ones are refused.
            r = await token(c, "ngo-north", exchange.secrets["ngo-north"])
            assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
            assert (await c.get("/v1/inbox", headers=before)).status_code == 401
        finally:
            r = await c.post("/v1/admin/agencies/ngo-north/enable", headers=admin)
            assert r.status_code == 200 and r.json()["disabled"] is False

        async def back() -> bool:
            return await explain(c, exchange, body) == shelter

        await wait_for(back, timeout=5)
        after = bearer(await token(c, "ngo-north", exchange.secrets["ngo-north"]))

        async def inbox_again() -> bool:
            return (await c.get("/v1/inbox", headers=after)).status_code == 200

        await wait_for(inbox_again, timeout=5)
        assert (await c.get("/v1/inbox", headers=before)).status_code == 401
        exchange._tokens.pop("ngo-north", None)  # cached before the revocation


async def test_every_object_level_refusal_is_audited(exchange: Exchange) -> None:
    """`gp` is neither submitter nor recipient of a referral to ngo-south and the police: each
    thing it tries is a 404, and each is an `access.denied` record naming it and what it tried."""
    async with exchange.client() as c:
        r = await c.post(
            "/v1/referrals", json=victim(region="KZ-79"), headers=exchange.headers("labour-insp")
        )
        rid = r.json()["id"]

        async def delivery() -> str | None:
            r = await c.get(
                "/v1/inbox", params={"referral": rid}, headers=exchange.headers("ngo-south")
            )
            items = r.json()["items"]
            return items[0]["delivery_id"] if items else None

        async def delivered() -> bool:
            return await delivery() is not None

        await wait_for(delivered, timeout=30)
        did = await delivery()
        gp = exchange.headers("gp")
        consent = {
            "services": False,
            "law_enforcement": False,
            "statistics": False,
            "given_by": "self",
            "recorded_at": "2026-11-21T10:00:00Z",
        }
        webhook = {"url": "https://hooks.example/nrm"}
        tries = [
            ("GET", f"/v1/referrals/{rid}", None),
            ("GET", f"/v1/referrals/{rid}/status", None),
            ("PUT", f"/v1/referrals/{rid}/consent", consent),
            ("POST", f"/v1/referrals/{rid}/withdraw", None),
            ("GET", f"/v1/deliveries/{did}", None),
            ("POST", f"/v1/deliveries/{did}/acknowledge", None),
            ("POST", f"/v1/deliveries/{did}/accept", None),
            ("POST", f"/v1/deliveries/{did}/decline", {"reason": "not ours"}),
            ("POST", f"/v1/deliveries/{did}/complete", None),
            ("PUT", "/v1/agencies/ngo-south/webhook", webhook),
            ("GET", "/v1/agencies/ngo-south/webhook", None),
            ("GET", "/v1/agencies/ngo-south/webhook/attempts", None),
            ("PUT", "/v1/agencies/ngo-south/email", {"addresses": ["x@ngo-south.example"]}),
        ]
        for method, path, body in tries:
            r = await c.request(method, path, json=body, headers=gp)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
        expected = sorted(
            [
                ("referral.read", "referral", rid),
                ("GET /v1/referrals/{referral_id}/status", "referral", rid),
                ("PUT /v1/referrals/{referral_id}/consent", "referral", rid),
                ("POST /v1/referrals/{referral_id}/withdraw", "referral", rid),
                ("GET /v1/deliveries/{delivery_id}", "delivery", did),
                ("POST /v1/deliveries/{delivery_id}/acknowledge", "delivery", did),
                ("POST /v1/deliveries/{delivery_id}/accept", "delivery", did),
                ("POST /v1/deliveries/{delivery_id}/decline", "delivery", did),
                ("POST /v1/deliveries/{delivery_id}/complete", "delivery", did),
                ("PUT /v1/agencies/{agency}/webhook", "agency", "ngo-south"),
                ("GET /v1/agencies/{agency}/webhook", "agency", "ngo-south"),
                ("GET /v1/agencies/{agency}/webhook/attempts", "agency", "ngo-south"),
                ("PUT /v1/agencies/{agency}/email", "agency", "ngo-south"),
            ]
        )

        async def denials() -> list[tuple[str, str, str]]:
            r = await c.get(
                "/v1/audit/events",
                params={"type": "access.denied", "agency": "gp", "limit": 500},
                headers=exchange.headers("auditor"),
            )
            return sorted(
                (p["action"], p["resource_type"], p["resource_id"])
                for p in (e["payload"] for e in r.json()["items"])
                if p["resource_id"] in (rid, did, "ngo-south") and p["client_id"] == "gp"
            )

        async def all_audited() -> bool:
            return len(await denials()) >= len(expected)

        await wait_for(all_audited, timeout=30)
        assert await denials() == expected
        # The referral's own refusals are on its timeline too.
        r = await c.get(f"/v1/audit/referrals/{rid}/timeline", headers=exchange.headers("auditor"))
        on_timeline = [e for e in r.json()["events"] if e["type"] == "access.denied"]
        assert {e["agency"] for e in on_timeline} == {"gp"} and len(on_timeline) == 4


async def test_webhook_host_tricks_are_refused_at_registration(exchange: Exchange) -> None:
    admin = exchange.headers("admin")
    tricks = [
        "https://localhost/hook",
        "https://127.1/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://0177.0.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1.nip.io/hook",  # refused whether or not this machine can resolve it
    ]
    async with exchange.client() as c:
        for url in tricks:
            r = await c.put("/v1/agencies/ngo-south/webhook", json={"url": url}, headers=admin)
            assert r.status_code == 422, (url, r.text)
            assert r.json()["errors"][0]["path"] == "url", url
        r = await c.get("/v1/agencies/ngo-south/webhook", headers=admin)
        assert r.status_code == 404  # nothing was stored
        short = "whsec_" + base64.b64encode(b"0123456789").decode()
        r = await c.put(
            "/v1/agencies/ngo-south/webhook",
            json={"url": "https://hooks.example/x", "secret": short},
            headers=admin,
        )
        assert r.status_code == 422 and r.json()["errors"][0]["path"] == "secret"
        r = await c.put(
            "/v1/agencies/no-such-agency/webhook",
            json={"url": "https://hooks.example/x"},
            headers=admin,
        )
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


async def test_every_response_carries_the_security_headers(exchange: Exchange) -> None:
    async with exchange.client() as c:
        responses = [
            await c.get("/healthz"),
            await c.get("/readyz"),
            await c.get("/metrics"),
            await c.get("/docs"),
            await c.get("/openapi/intake.json"),
            await c.get("/no/such/path"),
            await c.get("/v1/inbox"),  # 401
            await c.post("/oauth/token", data={"grant_type": "client_credentials"}),  # 401
            await c.get("/.well-known/jwks.json"),
            await c.post(
                "/v1/referrals", json=victim(), headers=exchange.headers("labour-insp")
            ),  # 201
            await c.get("/v1/routing/policy", headers=exchange.headers("labour-insp")),  # 404
            await c.get("/v1/audit/verify", headers=exchange.headers("auditor")),
        ]
    for r in responses:
        where = f"{r.request.method} {r.request.url.path} → {r.status_code}"
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (where, name)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], where
        assert "server" not in r.headers, where


async def test_docs_list_every_service_and_load_nothing_from_elsewhere(exchange: Exchange) -> None:
    owns = {
        "identity": "/oauth/token",
        "intake": "/v1/referrals",
        "router": "/v1/routing/explain",
        "notify": "/v1/inbox",
        "audit": "/v1/audit/verify",
        "insights": "/v1/statistics",
    }
    async with exchange.client() as c:
        page = await c.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for service, path in owns.items():
            r = await c.get(f"/openapi/{service}.json")
            assert r.status_code == 200, service
            assert path in r.json()["paths"], service
            assert f'href="/openapi/{service}.json"' in page.text
            assert f"<code>{path}</code>" in page.text
        for loads_something in ("<script", "<link", "src=", "@import"):
            assert loads_something not in page.text
        assert (await c.get("/openapi.json")).status_code == 404
        assert (await c.get("/openapi/nothing.json")).status_code == 404


async def test_every_service_refuses_oversize_and_non_json_bodies(exchange: Exchange) -> None:
    """The 64 KiB body limit and the JSON media type hold on every service, not only intake's
    hand-read bodies: FastAPI-parsed bodies (notify, identity, insights) and the token form."""
    big = {"url": "https://hooks.example.org/nrm", "pad": "x" * 2_000_000}
    admin = exchange.headers("admin")
    async with exchange.client() as c:
        oversize = [
            await c.put("/v1/agencies/ngo-north/webhook", json=big, headers=admin),
            await c.post("/v1/admin/clients", json=big, headers=admin),
            await c.post("/v1/referrals", json=big, headers=exchange.headers("labour-insp")),
            await c.post(
                "/oauth/token",
                content=b"grant_type=client_credentials&x=" + b"a" * 200_000,
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
        ]

        async def chunks() -> Any:  # no Content-Length: refused once past the limit
            for _ in range(40):
                yield b"x" * 4096

        streamed = await c.put(
            "/v1/agencies/ngo-north/webhook",
            content=chunks(),
            headers={**admin, "content-type": "application/json"},
        )
        not_json = [
            await c.put(
                "/v1/agencies/ngo-north/webhook",
                content=b'{"url": "https://hooks.example.org/nrm"}',
                headers={**admin, "content-type": "text/plain"},
            ),
            await c.post(
                "/v1/admin/clients",
                content=b'{"client_id": "x", "agency": "gp", "roles": ["referrer"]}',
                headers={**admin, "content-type": "text/plain"},
            ),
        ]
        # The webhook was never set by any of these.
        unset = await c.get("/v1/agencies/ngo-north/webhook", headers=admin)
    for r in [*oversize, streamed]:
        where = f"{r.request.method} {r.request.url.path}"
        assert r.status_code == 413, where
        assert r.headers["content-type"] == "application/problem+json", where
        assert r.json()["detail"] == "The body exceeds 65536 bytes.", where
    for r in not_json:
        assert r.status_code == 415, r.request.url.path
        assert r.headers["content-type"] == "application/problem+json"
    assert unset.status_code == 404


async def test_an_idle_connection_outlives_a_client_pools_keep_alive(exchange: Exchange) -> None:
    """A pooled client (httpx keeps an idle connection 5 s, proxies up to 60 s) sends its next
    request on the connection it kept. If the server had closed it first, that request would
    fail with a reset: the exchange keeps idle connections longer than such pools."""
    host, port = exchange.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()

    async def answered() -> bytes:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        return head.split(b"\r\n")[0]

    try:
        assert await answered() == b"HTTP/1.1 200 OK"
        # The input: 6 s of silence on the connection, past uvicorn's own default (5 s) and
        # httpx's pool expiry (5 s). Nothing is awaited for a result here.
        await asyncio.sleep(6)
        assert await answered() == b"HTTP/1.1 200 OK"  # the same connection, still open
    finally:
        writer.close()
