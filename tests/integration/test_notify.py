"""Notify over real HTTP and the real broker: inbox, live stream, staff actions, webhooks
(received by a server started here and verified with `standardwebhooks`), e-mail (received by
an aiosmtpd server started here), and the deadline clock."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from contracts.events import (
    AdminChanged,
    RecipientDecision,
    ReferralErased,
    ReferralRouted,
    RoutingReason,
)
from contracts.referrals import RoutingFacts
from contracts.vocabulary import Disclosure, ErasureBasis, ReferralKind, Urgency
from services.common.broker import EmbeddedBroker
from services.common.bus import create_producer
from services.common.crypto import Vault
from services.common.db import create_engine
from services.notify.app import create_app
from services.notify.channels import TargetRefused, check_url
from services.notify.settings import NotifySettings
from tests.support import (
    Database,
    Receiver,
    cursor_answers,
    outbox_payloads,
    publish_event,
    serve,
    wait_for,
    walk,
)
from tests.tokens import AUDIENCE, ISSUER, TokenMint

# The service


def settings_for(tmp_path: Path, **overrides: Any) -> NotifySettings:
    options: dict[str, Any] = {
        "data_dir": tmp_path,
        "auth_issuer": ISSUER,
        "auth_audience": AUDIENCE,
        "master_keys": {"k1": Vault.generate_key()},
        # The receivers run on loopback over plain HTTP; production allows https only.
        "webhook_allowed_schemes": ["http", "https"],
        "webhook_allow_private": True,
        "webhook_backoff_seconds": 0.05,
        "webhook_backoff_cap_seconds": 0.3,
        "webhook_disable_after": 50,
        "dispatch_poll_seconds": 0.2,
        "deadline_sweep_seconds": 0.2,
        **overrides,
    }
    return NotifySettings(**options)


@dataclass
class Notify:
    client: httpx.AsyncClient
    base: str
    mint: TokenMint
    db: Database
    producer: AIOKafkaProducer
    app: Any

    def as_(self, agency: str, *roles: str) -> dict[str, str]:
        return self.mint.headers(agency, *(roles or ("caseworker",)))

    async def route(
        self,
        *recipients: tuple[str, Disclosure],
        deadline: datetime | None = None,
        referral_id: str | None = None,
        reason: RoutingReason = RoutingReason.SUBMITTED,
        traceparent: str | None = None,
    ) -> ReferralRouted:
        referral_id = referral_id or str(uuid.uuid4())
        routed = ReferralRouted(
            referral_id=referral_id,
            reference=f"NRM-2026-{uuid.uuid4().int % 1_000_000:06d}",
            decision_id=str(uuid.uuid4()),
            reason=reason,
            policy_version="sha256:test",
            facts=RoutingFacts(
                kind=ReferralKind.VICTIM_REFERRAL,
                submitted_by="labour-insp",
                region="KZ-39",
                urgency=Urgency.HIGH,
                exploitation=["labour"],
            ),
            recipients=[
                RecipientDecision(
                    agency=agency,
                    disclosure=level,
                    rule="test-rule",
                    deadline=deadline or datetime.now(UTC) + timedelta(hours=4),
                )
                for agency, level in recipients
            ],
        )
        await publish_event(
            self.producer, routed, referral_id, source="router", traceparent=traceparent
        )
        return routed

    async def inbox(self, agency: str, **params: Any) -> list[dict[str, Any]]:
        r = await self.client.get("/v1/inbox", params=params, headers=self.as_(agency))
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def delivery(self, agency: str, referral_id: str) -> dict[str, Any]:
        async def there() -> bool:
            return any(i["referral_id"] == referral_id for i in await self.inbox(agency))

        await wait_for(there, timeout=30)
        return next(i for i in await self.inbox(agency) if i["referral_id"] == referral_id)


@contextlib.asynccontextmanager
async def running(
    db: Database, broker: EmbeddedBroker, settings: NotifySettings, engine: Any = None
) -> AsyncIterator[Notify]:
    mint = TokenMint()
    app = create_app(
        settings, bootstrap=broker.bootstrap, engine=engine or db.engine, jwks=mint.jwks
    )
    producer = create_producer(broker.bootstrap)
    await producer.start()
    try:
        async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield Notify(client, base, mint, db, producer, app)
    finally:
        await producer.stop()


@pytest.fixture
async def notify(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path, mailbox: Any
) -> AsyncIterator[Notify]:
    _, smtp_port = mailbox
    settings = settings_for(tmp_path, smtp_host="127.0.0.1", smtp_port=smtp_port)
    async with running(db, own_broker, settings) as n:
        yield n


class Stream:
    """A client of `GET /v1/inbox/stream`, collecting events as they arrive."""

    def __init__(
        self,
        n: Notify,
        agency: str,
        last_event_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.events: list[dict[str, Any]] = []
        self.connected = asyncio.Event()
        headers = dict(headers or n.as_(agency))
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self._task = asyncio.create_task(self._read(n.client, headers))

    async def _read(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        async with client.stream("GET", "/v1/inbox/stream", headers=headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            event: dict[str, Any] = {}
            async for line in r.aiter_lines():
                self.connected.set()
                if line.startswith("id: "):
                    event["id"] = line[4:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif line == "" and "data" in event:
                    self.events.append(event)
                    event = {}

    async def wait(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        async def seen() -> bool:
            return any(predicate(e["data"]) for e in self.events)

        await wait_for(seen, timeout=timeout)
        return next(e for e in self.events if predicate(e["data"]))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


# Tests


async def test_routed_event_reaches_inbox_stream_webhook_and_email(
    notify: Notify, receiver: Receiver, mailbox: Any
) -> None:
    box, _ = mailbox
    await receiver.start()
    r = await notify.client.put(
        "/v1/agencies/ngo-north/webhook",
        json={"url": receiver.url},
        headers=notify.as_("ngo-north", "supervisor"),
    )
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    assert secret.startswith("whsec_")
    r = await notify.client.put(
        "/v1/agencies/ngo-north/email",
        json={"addresses": ["duty@ngo-north.example"], "language": "ru"},
        headers=notify.as_("admin", "admin"),
    )
    assert r.status_code == 200, r.text
    r = await notify.client.get(
        "/v1/agencies/ngo-north/email", headers=notify.as_("ngo-north", "supervisor")
    )
    assert r.json() == {
        "agency": "ngo-north",
        "addresses": ["duty@ngo-north.example"],
        "language": "ru",
    }
    r = await notify.client.get(
        "/v1/agencies/ngo-north/email", headers=notify.as_("ngo-south", "supervisor")
    )
    assert r.status_code == 404  # another agency's: not confirmed

    stream = Stream(notify, "ngo-north")
    other = Stream(notify, "mvd-ctu")
    await asyncio.wait_for(asyncio.gather(stream.connected.wait(), other.connected.wait()), 10)
    routed = await notify.route(
        ("ngo-north", Disclosure.SUPPORT),
        ("mvd-ctu", Disclosure.FULL),
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )

    item = await notify.delivery("ngo-north", routed.referral_id)
    assert item["status"] == "notified"
    assert (item["disclosure"], item["rule"], item["reference"]) == (
        "support",
        "test-rule",
        routed.reference,
    )
    assert (item["urgency"], item["region"], item["exploitation"]) == ("high", "KZ-39", ["labour"])

    seen = await stream.wait(lambda d: d["referral_id"] == routed.referral_id)
    assert seen["data"]["delivery_id"] == item["delivery_id"]
    assert seen["data"]["change"] == "delivery.created"
    police = await other.wait(lambda d: d["referral_id"] == routed.referral_id)
    assert police["data"]["agency"] == "mvd-ctu"
    # Each agency's stream carries only its own deliveries.
    assert all(e["data"]["agency"] == "ngo-north" for e in stream.events)
    await stream.close()
    await other.close()

    await wait_for(lambda: _true(bool(receiver.received)), timeout=15)
    (payload,) = receiver.unique(secret).values()  # raises unless the signature verifies
    assert payload["type"] == "delivery.created"
    # The receiver can join the referral's trace: same trace id, notify's own span.
    ((headers, _),) = receiver.received
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert len(span_id) == 16 and span_id != "00f067aa0ba902b7"
    assert payload["data"]["delivery_id"] == item["delivery_id"]
    assert set(payload["data"]) >= {"reference", "status", "disclosure", "deadline", "rule"}

    await wait_for(lambda: _true(bool(box.messages)), timeout=15)
    (mail,) = box.messages
    assert mail["To"] == "duty@ngo-north.example"
    assert routed.reference in mail["Subject"] and "Новое направление" in mail["Subject"]
    text = mail.get_payload(decode=True).decode()
    assert "Срочность: high" in text and "Открой" in text
    # The link opens the delivery's page in the console (NRM_PUBLIC_URL's default address).
    assert f"http://127.0.0.1:8000/console/referrals/{routed.referral_id}\n" in text

    async def three_channels() -> bool:
        channels = {
            e["channel"]
            for e in await outbox_payloads(notify.db, "delivery.notified")
            if e["delivery_id"] == item["delivery_id"]
        }
        return channels == {"inbox", "webhook", "email"}

    await wait_for(three_channels, timeout=15)


async def _true(value: bool) -> bool:
    return value


async def test_inbox_pages_by_one_opaque_cursor(notify: Notify) -> None:
    """Five deliveries: an exactly full page is the last; two and a half pages give every
    delivery once, newest first; a cursor that is not one of the inbox's is 422."""
    referrals = [
        (await notify.route(("ngo-north", Disclosure.SUPPORT))).referral_id for _ in range(5)
    ]
    own = notify.as_("ngo-north")

    async def delivered() -> bool:
        r = await notify.client.get("/v1/inbox", params={"limit": 100}, headers=own)
        return len(r.json()["items"]) == 5

    await wait_for(delivered, timeout=30)
    c = notify.client
    (full,) = await walk(c, "/v1/inbox", headers=own, params={"limit": 5}, key="referral_id")
    assert sorted(full) == sorted(referrals)
    assert await walk(c, "/v1/inbox", headers=own, params={"limit": 2}, key="referral_id") == [
        full[0:2],
        full[2:4],
        full[4:5],
    ]
    refused = (422, "application/problem+json", ["query/cursor"])
    assert await cursor_answers(c, "/v1/inbox", headers=own) == {
        "%%%": refused,
        "bm90IGpzb24": refused,
        "WyJ4Il0": refused,
        "WzVd": refused,
    }


async def test_stream_resumes_from_last_event_id(notify: Notify) -> None:
    stream = Stream(notify, "ngo-north")
    await asyncio.wait_for(stream.connected.wait(), 10)
    routed = await notify.route(("ngo-north", Disclosure.SUPPORT))
    first = await stream.wait(lambda d: d["referral_id"] == routed.referral_id)
    await stream.close()
    # While disconnected, the delivery is acknowledged.
    r = await notify.client.post(
        f"/v1/deliveries/{first['data']['delivery_id']}/acknowledge",
        headers=notify.as_("ngo-north"),
    )
    assert r.status_code == 200
    resumed = Stream(notify, "ngo-north", last_event_id=first["id"])
    missed = await resumed.wait(lambda d: d["status"] == "acknowledged")
    assert int(missed["id"]) > int(first["id"])
    assert all(int(e["id"]) > int(first["id"]) for e in resumed.events)
    await resumed.close()

    # A person who recused themselves from the referral (intake's event) no longer sees it in
    # a replayed stream; a later referral still shows.
    person = {
        "Authorization": "Bearer "
        + notify.mint.token("ngo-north", "caseworker", client_id="console", person="p-9")
    }
    recused = AdminChanged(
        action="referral.recused",
        target_type="referral",
        target_id=routed.referral_id,
        actor="p-9",
        details={"agency": "ngo-north"},
    )
    await publish_event(notify.producer, recused, routed.referral_id, source="intake")

    async def hidden() -> bool:
        r = await notify.client.get(f"/v1/inbox?referral={routed.referral_id}", headers=person)
        return not r.json()["items"]

    await wait_for(hidden, timeout=10)
    later = await notify.route(("ngo-north", Disclosure.SUPPORT))
    replayed = Stream(notify, "ngo-north", last_event_id="0", headers=person)
    await replayed.wait(lambda d: d["referral_id"] == later.referral_id)
    assert routed.referral_id not in {e["data"]["referral_id"] for e in replayed.events}
    await replayed.close()


LIFECYCLE = [
    # (actions taken first, action tried, expected status, resulting delivery status)
    ([], "acknowledge", 200, "acknowledged"),
    ([], "accept", 409, "notified"),
    ([], "decline", 409, "notified"),
    ([], "complete", 409, "notified"),
    (["acknowledge"], "acknowledge", 409, "acknowledged"),
    (["acknowledge"], "accept", 200, "accepted"),
    (["acknowledge"], "decline", 200, "declined"),
    (["acknowledge"], "complete", 409, "acknowledged"),
    (["acknowledge", "accept"], "acknowledge", 409, "accepted"),
    (["acknowledge", "accept"], "accept", 409, "accepted"),
    (["acknowledge", "accept"], "decline", 409, "accepted"),
    (["acknowledge", "accept"], "complete", 200, "completed"),
    (["acknowledge", "decline"], "accept", 409, "declined"),
    (["acknowledge", "decline"], "complete", 409, "declined"),
    (["acknowledge", "decline"], "acknowledge", 409, "declined"),
    (["acknowledge", "accept", "complete"], "acknowledge", 409, "completed"),
    (["acknowledge", "accept", "complete"], "decline", 409, "completed"),
    (["acknowledge", "accept", "complete"], "complete", 409, "completed"),
]
CASE_EVENT = {
    "acknowledge": "referral.acknowledged",
    "accept": "referral.accepted",
    "decline": "referral.declined",
    "complete": "referral.completed",
}


async def test_lifecycle_every_transition(notify: Notify) -> None:
    async def act(delivery_id: str, action: str, agency: str = "ngo-north") -> httpx.Response:
        body = {"reason": "no places left"} if action == "decline" else None
        return await notify.client.post(
            f"/v1/deliveries/{delivery_id}/{action}", json=body, headers=notify.as_(agency)
        )

    failures = []
    for before, action, code, status in LIFECYCLE:
        routed = await notify.route(("ngo-north", Disclosure.SUPPORT))
        delivery_id = (await notify.delivery("ngo-north", routed.referral_id))["delivery_id"]
        for step in before:
            assert (await act(delivery_id, step)).status_code == 200
        r = await act(delivery_id, action)
        now = (
            await notify.client.get(
                f"/v1/deliveries/{delivery_id}", headers=notify.as_("ngo-north")
            )
        ).json()
        if (r.status_code, now["status"]) != (code, status):
            failures.append((before, action, r.status_code, now["status"]))
        if code == 409:
            assert r.headers["content-type"] == "application/problem+json"
        # Another agency cannot see or act on it: 404, as if it did not exist.
        for other_action in CASE_EVENT:
            assert (await act(delivery_id, other_action, agency="mvd-ctu")).status_code == 404
        assert (
            await notify.client.get(f"/v1/deliveries/{delivery_id}", headers=notify.as_("mvd-ctu"))
        ).status_code == 404
    assert not failures
    # Every legal action emitted its case event, and only those.
    legal = sum(len(before) for before, _, _, _ in LIFECYCLE) + sum(
        1 for c in LIFECYCLE if c[2] == 200
    )
    emitted = sum([len(await outbox_payloads(notify.db, t)) for t in CASE_EVENT.values()])
    assert emitted == legal
    declined = await outbox_payloads(notify.db, "referral.declined")
    assert {d["reason"] for d in declined} == {"no places left"}


async def test_decline_needs_a_reason_and_roles_are_checked(notify: Notify) -> None:
    routed = await notify.route(("ngo-north", Disclosure.SUPPORT))
    delivery_id = (await notify.delivery("ngo-north", routed.referral_id))["delivery_id"]
    await notify.client.post(
        f"/v1/deliveries/{delivery_id}/acknowledge", headers=notify.as_("ngo-north")
    )
    r = await notify.client.post(
        f"/v1/deliveries/{delivery_id}/decline", json={}, headers=notify.as_("ngo-north")
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "reason"
    r = await notify.client.post(
        f"/v1/deliveries/{delivery_id}/decline",
        json={"reason": ""},
        headers=notify.as_("ngo-north"),
    )
    assert r.status_code == 422
    # A referrer or auditor of the same agency has no inbox.
    for role in ("referrer", "auditor"):
        assert (
            await notify.client.get("/v1/inbox", headers=notify.as_("ngo-north", role))
        ).status_code == 404
    # A supervisor manages only its own agency's webhook.
    r = await notify.client.put(
        "/v1/agencies/mvd-ctu/webhook",
        json={"url": "https://hooks.example/x"},
        headers=notify.as_("ngo-north", "supervisor"),
    )
    assert r.status_code == 404


async def test_webhook_receiver_down_then_back_gets_everything_once(
    notify: Notify, receiver: Receiver
) -> None:
    r = await notify.client.put(
        "/v1/agencies/ngo-north/webhook",
        json={"url": receiver.url},
        headers=notify.as_("ngo-north", "supervisor"),
    )
    secret = r.json()["secret"]
    routed = [await notify.route(("ngo-north", Disclosure.SUPPORT)) for _ in range(5)]

    async def failed_attempts(n: int) -> bool:
        r = await notify.client.get(
            "/v1/agencies/ngo-north/webhook/attempts", headers=notify.as_("admin", "admin")
        )
        return sum(1 for a in r.json() if not a["ok"]) >= n

    await wait_for(lambda: failed_attempts(3), timeout=30)  # the receiver is not listening yet
    await receiver.start()
    wanted = {x.referral_id for x in routed}

    async def all_arrived() -> bool:
        got = {p["data"]["referral_id"] for p in receiver.unique(secret).values()}
        return got >= wanted

    await wait_for(all_arrived, timeout=30)
    unique = receiver.unique(secret)
    assert len(unique) == 5  # one webhook-id per delivery, however many tries
    admin = notify.as_("admin", "admin")
    attempts: list[dict[str, Any]] = []

    async def five_successes_logged() -> bool:
        # The receiver has the message a moment before the sender commits its attempt row.
        nonlocal attempts
        r = await notify.client.get("/v1/agencies/ngo-north/webhook/attempts", headers=admin)
        attempts = r.json()
        return sum(1 for a in attempts if a["ok"]) == 5

    await wait_for(five_successes_logged, timeout=30)
    assert any(not a["ok"] and a["error"] == "ConnectError" for a in attempts)
    hook = (
        await notify.client.get(
            "/v1/agencies/ngo-north/webhook", headers=notify.as_("ngo-north", "supervisor")
        )
    ).json()
    assert hook["enabled"] is True and hook["consecutive_failures"] == 0


async def test_receiver_that_always_fails_is_disabled(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.status = 500
    await receiver.start()
    settings = settings_for(tmp_path, webhook_disable_after=4)
    async with running(db, own_broker, settings) as notify:
        admin = notify.as_("admin", "admin")
        await notify.client.put(
            "/v1/agencies/ngo-north/webhook", json={"url": receiver.url}, headers=admin
        )
        for _ in range(2):
            await notify.route(("ngo-north", Disclosure.SUPPORT))

        async def disabled() -> bool:
            r = await notify.client.get("/v1/agencies/ngo-north/webhook", headers=admin)
            return r.json()["enabled"] is False

        await wait_for(disabled, timeout=30)
        hook = (await notify.client.get("/v1/agencies/ngo-north/webhook", headers=admin)).json()
        assert hook["disabled_reason"] == "4 consecutive failures"
        changes = [
            e
            for e in await outbox_payloads(db, "admin.changed")
            if e["action"] == "webhook.disabled"
        ]
        assert [c["target_id"] for c in changes] == ["ngo-north"]

        async def given_up() -> bool:
            return len(await outbox_payloads(db, "delivery.failed")) == 2

        await wait_for(given_up, timeout=30)  # no more retries once disabled
        attempts = len(receiver.received)
        assert 4 <= attempts < 8


async def test_deadline_missed_once_with_two_instances(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, deadline_sweep_seconds=0.05)
    second_engine = create_engine(db.url, search_path=db.schema)  # a pool of its own
    try:
        async with (
            running(db, own_broker, settings) as one,
            running(db, own_broker, settings, second_engine) as two,
        ):
            routed = await one.route(
                ("ngo-north", Disclosure.SUPPORT),
                ("mvd-ctu", Disclosure.FULL),
                deadline=datetime.now(UTC) + timedelta(seconds=1),
            )
            await one.delivery("ngo-north", routed.referral_id)

            async def missed() -> bool:
                return len(await outbox_payloads(db, "referral.deadline_missed")) >= 2

            await wait_for(missed, timeout=30)
            # Let both clocks sweep many more times over the same overdue deliveries.
            sweeps = (one.app.state.clock.ticks, two.app.state.clock.ticks)
            await wait_for(
                lambda: _true(
                    one.app.state.clock.ticks > sweeps[0] + 10
                    and two.app.state.clock.ticks > sweeps[1] + 10
                ),
                timeout=30,
            )
            events = await outbox_payloads(db, "referral.deadline_missed")
            assert sorted(e["agency"] for e in events) == ["mvd-ctu", "ngo-north"]
            overdue = await one.inbox("ngo-north", overdue="true")
            assert [i["referral_id"] for i in overdue] == [routed.referral_id]
    finally:
        await second_engine.dispose()


def test_webhook_urls_refused() -> None:
    strict = NotifySettings(webhook_allowed_hosts=[])
    for url, reason in [
        ("http://hooks.example/x", "scheme http is not allowed"),
        ("https://10.0.0.5/x", "is not public"),
        ("https://127.0.0.1:8080/x", "is not public"),
        ("https://[::1]/x", "is not public"),
        ("https://169.254.169.254/latest/meta-data", "is not public"),
        ("https://hooks.example/x\r\nX-Injected: 1", "characters a URL cannot have"),
        ("https://user:pw@hooks.example/x", "no credentials"),
        ("ftp://hooks.example/x", "scheme ftp"),
    ]:
        with pytest.raises(TargetRefused, match=reason):
            check_url(url, strict)
    assert check_url("https://hooks.example/x", strict)
    only = NotifySettings(webhook_allowed_hosts=["ngo.example"])
    assert check_url("https://hooks.ngo.example/x", only)
    with pytest.raises(TargetRefused, match="not among the allowed"):
        check_url("https://evil.example/x", only)


async def test_bad_webhook_url_is_a_422(notify: Notify) -> None:
    r = await notify.client.put(
        "/v1/agencies/ngo-north/webhook",
        json={"url": "https://hooks.example/\r\nX-Injected: 1"},
        headers=notify.as_("admin", "admin"),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "url"


async def test_overdue_everywhere_for_the_coordinators_supervisors_only(notify: Notify) -> None:
    late = await notify.route(
        ("ngo-north", Disclosure.SUPPORT), deadline=datetime.now(UTC) - timedelta(minutes=5)
    )
    on_time = await notify.route(("mvd-ctu", Disclosure.FULL))
    await notify.delivery("ngo-north", late.referral_id)
    await notify.delivery("mvd-ctu", on_time.referral_id)

    r = await notify.client.get(
        "/v1/deliveries/overdue", headers=notify.as_("nrm-coordinator", "supervisor")
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["agency"], i["referral_id"]) for i in items] == [("ngo-north", late.referral_id)]
    assert items[0]["reference"] == late.reference
    # Another agency's supervisor, or the coordinator's caseworker: nothing to see.
    for agency, role in (("ngo-north", "supervisor"), ("nrm-coordinator", "caseworker")):
        r = await notify.client.get("/v1/deliveries/overdue", headers=notify.as_(agency, role))
        assert r.status_code == 404, (agency, role, r.text)


# Erasure (issue 23)

CANARY = "CANARY-ab12cd: she moved in with her cousin in Semey"


def _database_files(db: Database) -> list[Path]:
    path = Path(db.url.split("///", 1)[1])
    return [f for f in (path, path.with_name(path.name + "-wal")) if f.exists()]


async def _stored_text(db: Database) -> str:
    """Every row of every notify and runtime table, as text (both databases)."""
    from services.common.models import runtime_metadata
    from services.notify.models import notify_metadata

    out = []
    async with db.engine.connect() as conn:
        for metadata in (notify_metadata, runtime_metadata):
            for table in metadata.sorted_tables:
                rows = (await conn.execute(table.select())).all()
                out += [repr(tuple(row)) for row in rows]
    return "\n".join(out)


async def test_erasure_empties_deliveries_and_tells_every_recipient(
    notify: Notify, receiver: Receiver, mailbox: Any, tmp_path: Path
) -> None:
    box, _ = mailbox
    await receiver.start()
    north = notify.as_("ngo-north", "supervisor")
    r = await notify.client.put(
        "/v1/agencies/ngo-north/webhook", json={"url": receiver.url}, headers=north
    )
    secret = r.json()["secret"]
    r = await notify.client.put(
        "/v1/agencies/ngo-north/email",
        json={"addresses": ["duty@ngo-north.example"], "language": "en"},
        headers=north,
    )
    assert r.status_code == 200
    stream = Stream(notify, "ngo-north")
    await asyncio.wait_for(stream.connected.wait(), 10)
    routed = await notify.route(("ngo-north", Disclosure.SUPPORT), ("mvd-ctu", Disclosure.FULL))
    referral_id = routed.referral_id
    north_id = (await notify.delivery("ngo-north", referral_id))["delivery_id"]
    police_id = (await notify.delivery("mvd-ctu", referral_id))["delivery_id"]

    # The free text that reaches notify: a decline reason (stored, streamed, sent by webhook,
    # and in the outbox's `referral.declined`).
    for action, body in (("acknowledge", None), ("decline", {"reason": CANARY})):
        r = await notify.client.post(
            f"/v1/deliveries/{north_id}/{action}", json=body, headers=notify.as_("ngo-north")
        )
        assert r.status_code == 200, r.text

    async def declined_sent() -> bool:
        kinds = [p["type"] for p in receiver.unique(secret).values()]
        return "delivery.declined" in kinds

    await wait_for(declined_sent, timeout=15)

    async def outbox_delivered() -> bool:
        async with notify.db.engine.connect() as conn:
            pending = await conn.execute(
                text("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
            )
            return bool(pending.scalar_one() == 0)

    await wait_for(outbox_delivered, timeout=15)
    assert CANARY in await _stored_text(notify.db)
    if notify.db.kind == "sqlite":
        assert any(CANARY.encode() in f.read_bytes() for f in _database_files(notify.db))
    before_mail = len(box.messages)

    erased = await publish_event(
        notify.producer,
        ReferralErased(referral_id=referral_id, basis=ErasureBasis.VICTIM_REQUEST),
        referral_id,
        source="intake",
    )

    async def is_erased() -> bool:
        item = await notify.delivery("ngo-north", referral_id)
        return bool(item["status"] == "erased")

    await wait_for(is_erased, timeout=15)
    item = await notify.delivery("ngo-north", referral_id)
    erased_at = item["erased_at"]
    assert erased_at is not None
    assert {k: v for k, v in item.items() if k not in ("deadline", "updated_at", "erased_at")} == {
        "delivery_id": north_id,
        "referral_id": referral_id,
        "reference": routed.reference,
        "agency": "ngo-north",
        "status": "erased",
        "disclosure": "support",
        "rule": "test-rule",
        "urgency": None,
        "exploitation": [],
        "region": None,
        "kind": None,
        "minor": None,
        "decline_reason": None,
        "erasure_acknowledged_at": None,
    }
    # Needing action: listed among the erased, not yet acknowledged.
    assert [i["delivery_id"] for i in await notify.inbox("ngo-north", status="erased")] == [
        north_id
    ]
    police = await notify.delivery("mvd-ctu", referral_id)
    assert (police["status"], police["region"], police["disclosure"]) == ("erased", None, "full")

    # The live stream: the notice, and nothing older of the delivery is replayed.
    notice = {
        "delivery_id": north_id,
        "referral_id": referral_id,
        "reference": routed.reference,
        "agency": "ngo-north",
        "status": "erased",
        "erased_at": datetime.fromisoformat(erased_at).isoformat(),  # as the stream writes it
        "erasure_acknowledged_at": None,
    }
    seen = await stream.wait(lambda d: d["change"] == "delivery.erased")
    assert seen["data"] == {"change": "delivery.erased", **notice}
    await stream.close()
    replayed = Stream(notify, "ngo-north", last_event_id="0")
    await replayed.wait(lambda d: d["change"] == "delivery.erased")
    # Earlier changes keep their kind (the status history) but show the notice's facts only.
    assert [e["data"]["change"] for e in replayed.events] == [
        "delivery.created",
        "delivery.acknowledged",
        "delivery.declined",
        "delivery.erased",
    ]
    earlier = {k: v for k, v in notice.items() if k != "erasure_acknowledged_at"}
    assert [{k: v for k, v in e["data"].items() if k != "change"} for e in replayed.events[:3]] == [
        earlier
    ] * 3
    await replayed.close()

    # The webhook: the notice only.
    async def webhook_told() -> bool:
        return any(p["type"] == "delivery.erased" for p in receiver.unique(secret).values())

    await wait_for(webhook_told, timeout=15)
    (sent,) = [p for p in receiver.unique(secret).values() if p["type"] == "delivery.erased"]
    assert sent["data"] == notice
    assert set(sent) == {"type", "timestamp", "data"}

    # The e-mail: the reference and that it was erased.
    await wait_for(lambda: _true(len(box.messages) > before_mail), timeout=15)
    (mail,) = box.messages[before_mail:]
    assert mail["Subject"] == f"[NRM {routed.reference}] Referral erased: acknowledge this notice"
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert body == (
        f"The referral {routed.reference}, sent to your agency through NRM Exchange, has been "
        "erased.\n\nDelete any copy of it your agency keeps outside NRM Exchange, then "
        "acknowledge this notice in the console's inbox: http://127.0.0.1:8000/console/inbox\n"
        "\nThis message contains no personal data.\n"
    )

    # Every other action is refused; the acknowledgement is recorded once.
    for action, body in (("accept", None), ("decline", {"reason": "x"}), ("complete", None)):
        r = await notify.client.post(
            f"/v1/deliveries/{police_id}/{action}", json=body, headers=notify.as_("mvd-ctu")
        )
        assert r.status_code == 409
        assert r.headers["content-type"] == "application/problem+json"
    first = await notify.client.post(
        f"/v1/deliveries/{police_id}/acknowledge", headers=notify.as_("mvd-ctu")
    )
    again = await notify.client.post(
        f"/v1/deliveries/{police_id}/acknowledge", headers=notify.as_("mvd-ctu")
    )
    assert first.status_code == again.status_code == 200
    assert first.json()["erasure_acknowledged_at"] is not None
    assert again.json() == first.json()
    acknowledged = await outbox_payloads(notify.db, "referral.erasure_acknowledged")
    assert [(a["delivery_id"], a["agency"]) for a in acknowledged] == [(police_id, "mvd-ctu")]
    assert (await notify.delivery("ngo-north", referral_id))["erasure_acknowledged_at"] is None

    # A redelivered erasure changes nothing and tells nobody again.
    again_erased = await publish_event(
        notify.producer,
        ReferralErased(referral_id=referral_id, basis=ErasureBasis.VICTIM_REQUEST),
        referral_id,
        source="intake",
    )

    async def processed(event_id: str) -> bool:
        async with notify.db.engine.connect() as conn:
            found = await conn.execute(
                text("SELECT count(*) FROM processed_event WHERE event_id = :id"), {"id": event_id}
            )
            return bool(found.scalar_one() == 1)

    assert await processed(erased.id)
    await wait_for(lambda: processed(again_erased.id), timeout=15)
    async with notify.db.engine.connect() as conn:
        notices = await conn.execute(
            text(
                "SELECT channel, count(*) FROM dispatch WHERE kind = 'delivery.erased' "
                "GROUP BY channel ORDER BY channel"
            )
        )
        assert [tuple(r) for r in notices] == [("email", 1), ("webhook", 1)]
    police = await notify.delivery("mvd-ctu", referral_id)
    assert police["erasure_acknowledged_at"] == first.json()["erasure_acknowledged_at"]

    # Nothing of the decline reason is left in any table, nor in the database's files.
    assert CANARY not in await _stored_text(notify.db)
    if notify.db.kind == "sqlite":

        async def files_clean() -> bool:
            return not any(CANARY.encode() in f.read_bytes() for f in _database_files(notify.db))

        await wait_for(files_clean, timeout=15)
    ledger = (tmp_path / "notify-erasure-ledger.jsonl").read_text()
    assert referral_id in ledger and CANARY not in ledger
