"""Intake through its HTTP API, with a real broker and real databases."""

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, text
from sqlmodel import select

from contracts.cloudevents import CloudEvent
from contracts.events import (
    DeliveryNotified,
    RecipientDecision,
    ReferralAcknowledged,
    ReferralRouted,
    RoutingReason,
)
from contracts.referrals import RoutingFacts
from contracts.vocabulary import Disclosure, Role
from services.common.broker import EmbeddedBroker
from services.common.bus import create_producer
from services.common.crypto import Vault
from services.common.models import OutboxRecord
from services.intake.app import create_app
from services.intake.models import Referral
from services.intake.settings import IntakeSettings
from tests.support import Database, cursor_answers, outbox_payloads, read_topic, wait_for, walk
from tests.tokens import AUDIENCE, ISSUER, TokenMint
from tests.unit.test_contracts import REFERRAL_EXAMPLE, TIP_EXAMPLE, with_change

REFERRER = ("referrer",)
CASEWORKER = ("caseworker",)


@dataclass
class Intake:
    client: httpx.AsyncClient
    mint: TokenMint
    db: Database
    broker: EmbeddedBroker
    producer: AIOKafkaProducer

    async def submit(
        self, body: str | dict[str, Any], agency: str = "labour-insp", **headers: str
    ) -> httpx.Response:
        content = body if isinstance(body, str) else json.dumps(body)
        return await self.client.post(
            "/v1/referrals",
            content=content,
            headers={
                "content-type": "application/json",
                **self.mint.headers(agency, *REFERRER),
                **headers,
            },
        )

    async def read(self, referral_id: str, agency: str, *roles: str) -> httpx.Response:
        return await self.client.get(
            f"/v1/referrals/{referral_id}",
            headers=self.mint.headers(agency, *(roles or CASEWORKER)),
        )

    async def publish(self, payload: Any, subject: str, topic: str) -> None:
        event = CloudEvent.new(source="test", payload=payload, subject=subject)
        rec = event.to_kafka()
        await self.producer.send_and_wait(topic, rec.value, key=rec.key, headers=rec.headers)

    async def route(self, referral_id: str, *decisions: RecipientDecision) -> None:
        view = (await self.read(referral_id, "labour-insp", *REFERRER)).json()
        facts = RoutingFacts(
            kind=view["kind"],
            submitted_by=view["submitted_by"],
            region=view["region"],
            urgency=view["urgency"],
            exploitation=view["exploitation"],
        )
        routed = ReferralRouted(
            referral_id=referral_id,
            reference=view["reference"],
            decision_id=uuid.uuid4().hex,
            reason=RoutingReason.SUBMITTED,
            policy_version="test",
            facts=facts,
            recipients=list(decisions),
        )
        await self.publish(routed, referral_id, "nrm.routing.v1")
        expected = {d.agency for d in decisions}

        async def known() -> bool:
            r = await self.client.get(
                f"/v1/referrals/{referral_id}/status",
                headers=self.mint.headers("labour-insp", *REFERRER),
            )
            return {x["agency"] for x in r.json()["recipients"]} >= expected

        await wait_for(known, timeout=30)

    async def count(self, model: Any) -> int:
        async with self.db.sessions() as session:
            return int((await session.exec(select(func.count()).select_from(model))).one())

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        return await outbox_payloads(self.db, event_type)


@pytest.fixture
async def intake(db: Database, own_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Intake]:
    mint = TokenMint()
    settings = IntakeSettings(
        data_dir=tmp_path,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        master_keys={"k1": Vault.generate_key()},
        max_body_bytes=16 * 1024,
    )
    app = create_app(settings, bootstrap=own_broker.bootstrap, engine=db.engine, jwks=mint.jwks)
    producer = create_producer(own_broker.bootstrap)
    await producer.start()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield Intake(client, mint, db, own_broker, producer)
    await producer.stop()


REFERENCE = re.compile(r"^NRM-\d{4}-\d{6}$")
CANARIES = ("Aigerim Example", "N1234567", "2002-03-14", "+77010000000", "waitress work abroad")


async def test_design_examples_are_accepted(intake: Intake) -> None:
    referral = await intake.submit(REFERRAL_EXAMPLE)
    tip = await intake.submit(TIP_EXAMPLE, agency="ngo-north")
    for r in (referral, tip):
        assert r.status_code == 201, r.text
        body = r.json()
        assert REFERENCE.match(body["reference"]) and body["status"] == "submitted"
        assert r.headers["location"] == f"/v1/referrals/{body['id']}"
    assert referral.json()["reference"] != tip.json()["reference"]
    view = (await intake.read(referral.json()["id"], "labour-insp", *REFERRER)).json()
    assert view["disclosure"] == "full"
    assert view["victim"]["identity"]["full_name"] == "Aigerim Example"
    assert view["victim"]["contact"]["phone"] == "+77010000000"
    assert view["narrative"].startswith("Recruited online")
    assert view["external_ref"] == "LI-2026-0042"
    submitted = await intake.events("referral.submitted")
    assert [e["reference"] for e in submitted] == [
        referral.json()["reference"],
        tip.json()["reference"],
    ]
    assert submitted[0]["facts"]["consent"] == {
        "services": True,
        "law_enforcement": True,
        "statistics": True,
    }


def _mutate(path: str, value: Any) -> str:
    return json.dumps(with_change(json.loads(REFERRAL_EXAMPLE), path, value))


INVALID = [
    # (body, content type, status, expected error path or None)
    (
        _mutate("exploitation", ["slavery"]),
        "application/json",
        422,
        "victim_referral/exploitation/0",
    ),
    (_mutate("kind", "rumour"), "application/json", 422, "kind"),
    (_mutate("region", "KZ-99"), "application/json", 422, "victim_referral/region"),
    (
        _mutate("destination_countries", ["XX"]),
        "application/json",
        422,
        "victim_referral/destination_countries/0",
    ),
    (
        _mutate("victim.citizenship", "QQ"),
        "application/json",
        422,
        "victim_referral/victim/citizenship",
    ),
    (_mutate("victim.age", 150), "application/json", 422, "victim_referral/victim/age"),
    (_mutate("consent", ...), "application/json", 422, "victim_referral/consent"),
    (_mutate("surprise", True), "application/json", 422, "victim_referral/surprise"),
    # Strict types: no booleans or strings for numbers, no age that the birth date denies.
    (_mutate("victim.age", True), "application/json", 422, "victim_referral/victim/age"),
    (_mutate("victim.age", "30"), "application/json", 422, "victim_referral/victim/age"),
    (_mutate("victim.age", 30), "application/json", 422, "victim_referral"),  # born 2002
    (_mutate("region", "RU-MOW"), "application/json", 422, "victim_referral/region"),
    (_mutate("region", "US-CA"), "application/json", 422, "victim_referral/region"),
    # Control and bidirectional formatting characters in names and text.
    (
        _mutate("victim.identity.full_name", "Ai\u0000gerim"),
        "application/json",
        422,
        "victim_referral/victim/identity/full_name",
    ),
    (
        _mutate("victim.identity.full_name", "Evil\u202eeman"),
        "application/json",
        422,
        "victim_referral/victim/identity/full_name",
    ),
    (
        _mutate("victim.identity.document_number", "N12\u2066345"),
        "application/json",
        422,
        "victim_referral/victim/identity/document_number",
    ),
    (_mutate("external_ref", "LI\u0000"), "application/json", 422, "victim_referral/external_ref"),
    (_mutate("narrative", "a\u0000b"), "application/json", 422, "victim_referral/narrative"),
    (
        _mutate("consent.recorded_at", "2099-11-20T10:00:00Z"),
        "application/json",
        422,
        "victim_referral/consent/recorded_at",
    ),
    ("{not json", "application/json", 422, None),
    ("[]", "application/json", 422, None),
    (_mutate("narrative", "x" * 20_000), "application/json", 413, None),
    (REFERRAL_EXAMPLE, "text/plain", 415, None),
    (REFERRAL_EXAMPLE, "application/x-www-form-urlencoded", 415, None),
    # Hostile input: deep nesting and invalid UTF-8 are refused with a 422, never a 500.
    ("[" * 5000 + "]" * 5000, "application/json", 422, None),
    (
        b'{"kind": "tip", "region": "KZ-39", "exploitation": ["sexual"], "narrative": "'
        + b"\xff\xfe\xfd"
        + b'"}',
        "application/json",
        422,
        None,
    ),
]


@pytest.mark.parametrize(("body", "content_type", "status", "path"), INVALID)
async def test_invalid_bodies_are_refused_and_nothing_is_stored(
    intake: Intake, body: str | bytes, content_type: str, status: int, path: str | None
) -> None:
    r = await intake.client.post(
        "/v1/referrals",
        content=body,
        headers={"content-type": content_type, **intake.mint.headers("labour-insp", *REFERRER)},
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if path is not None:
        assert path in {e["path"] for e in r.json()["errors"]}
    assert "Aigerim" not in r.text
    assert await intake.count(Referral) == 0
    assert await intake.count(OutboxRecord) == 0 or not await intake.events("referral.submitted")


async def test_no_identity_on_the_bus_or_in_the_database_in_clear(intake: Intake) -> None:
    r = await intake.submit(REFERRAL_EXAMPLE)
    referral_id = r.json()["id"]

    def found(records: list[Any]) -> bool:
        return any(dict(rec.headers).get("ce_subject") == referral_id.encode() for rec in records)

    records = await read_topic(intake.broker.bootstrap, "nrm.referrals.v1", until=found, timeout=30)
    raw = b"".join(rec.value + b"".join(v for _, v in rec.headers) for rec in records)
    assert referral_id.encode() in raw
    for canary in CANARIES:
        assert canary.encode() not in raw
    for canary in CANARIES:
        assert canary.encode() not in await _database_dump(intake.db)


async def _database_dump(db: Database) -> bytes:
    if db.kind == "sqlite":
        await db.engine.dispose()  # checkpoint nothing away: read the main file and the WAL
        path = Path(db.url.split("///", 1)[1])
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    dump = b""
    async with db.engine.connect() as conn:
        tables = (
            (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            )
            .scalars()
            .all()
        )
        for table in tables:
            rows = (await conn.execute(text(f'SELECT t::text FROM "{table}" t'))).scalars().all()
            dump += "\n".join(rows).encode()
    assert b"NRM-" in dump
    return dump


def _decision(agency: str, disclosure: Disclosure, *consent: str) -> RecipientDecision:
    return RecipientDecision(
        agency=agency,
        disclosure=disclosure,
        rule=f"rule-{agency}",
        deadline=datetime.now(UTC) + timedelta(hours=24),
        requires_consent=list(consent),
    )


async def test_disclosure_matrix(intake: Intake) -> None:
    referral_id = (await intake.submit(REFERRAL_EXAMPLE)).json()["id"]
    # Before routing is known, a would-be recipient learns nothing, not even existence.
    early = await intake.read(referral_id, "mvd-ctu")
    assert early.status_code == 404
    await intake.route(
        referral_id,
        _decision("mvd-ctu", Disclosure.FULL, "law_enforcement"),
        _decision("ngo-south", Disclosure.SUPPORT, "services"),
        _decision("gp", Disclosure.ANONYMOUS),
    )
    views = {a: (await intake.read(referral_id, a)).json() for a in ("mvd-ctu", "ngo-south", "gp")}
    full, support, anonymous = views["mvd-ctu"], views["ngo-south"], views["gp"]
    assert (full["disclosure"], support["disclosure"], anonymous["disclosure"]) == (
        "full",
        "support",
        "anonymous",
    )
    assert (
        full["narrative"].startswith("Recruited")
        and full["victim"]["identity"]["document_number"] == "N1234567"
    )
    assert "narrative" not in support
    assert support["victim"]["identity"]["full_name"] == "Aigerim Example"
    assert support["victim"]["contact"]["phone"] == "+77010000000"
    assert support["victim"]["languages"] == ["kk", "ru"] and support["victim"]["needs"] == [
        "shelter",
        "medical",
        "legal",
    ]
    assert set(anonymous["victim"]) == {"status", "minor", "needs"}
    assert "narrative" not in anonymous and "consent" not in anonymous
    for canary in CANARIES:
        assert canary not in json.dumps(anonymous)
    # Neither submitter nor recipient: 404, the same answer as for an id that does not exist.
    stranger = await intake.read(referral_id, "labour-insp")
    missing = await intake.read(str(uuid.uuid4()), "labour-insp")
    assert stranger.status_code == missing.status_code == 404
    assert stranger.json()["detail"] == missing.json()["detail"]
    granted = await intake.events("access.granted")
    assert {(g["agency"], g["disclosure"]) for g in granted} >= {
        ("mvd-ctu", "full"),
        ("ngo-south", "support"),
        ("gp", "anonymous"),
    }
    denied = await intake.events("access.denied")
    assert {(d["agency"], d["resource_id"]) for d in denied} >= {
        ("mvd-ctu", referral_id),
        ("labour-insp", referral_id),
    }


async def test_purpose_header_is_recorded(intake: Intake) -> None:
    referral_id = (await intake.submit(REFERRAL_EXAMPLE)).json()["id"]
    r = await intake.client.get(
        f"/v1/referrals/{referral_id}",
        headers={"X-Purpose": "case review", **intake.mint.headers("labour-insp", *REFERRER)},
    )
    assert r.status_code == 200
    assert (await intake.events("access.granted"))[-1]["purpose"] == "case review"


async def test_lower_consent_lowers_disclosure_for_later_reads(intake: Intake) -> None:
    referral_id = (await intake.submit(REFERRAL_EXAMPLE)).json()["id"]
    await intake.route(
        referral_id,
        _decision("mvd-ctu", Disclosure.FULL, "law_enforcement"),
        _decision("ngo-south", Disclosure.SUPPORT, "services"),
    )
    consent = {
        "services": True,
        "law_enforcement": False,
        "statistics": False,
        "given_by": "self",
        "recorded_at": "2026-11-21T09:00:00Z",
    }
    headers = {"content-type": "application/json", **intake.mint.headers("labour-insp", *REFERRER)}
    foreign = await intake.client.put(
        f"/v1/referrals/{referral_id}/consent",
        content=json.dumps(consent),
        headers={"content-type": "application/json", **intake.mint.headers("gp", *REFERRER)},
    )
    assert foreign.status_code == 404
    r = await intake.client.put(
        f"/v1/referrals/{referral_id}/consent", content=json.dumps(consent), headers=headers
    )
    assert r.status_code == 200, r.text
    police = (await intake.read(referral_id, "mvd-ctu")).json()
    assert (
        police["disclosure"] == "anonymous"
        and "victim" in police
        and "identity" not in police["victim"]
    )
    assert (await intake.read(referral_id, "ngo-south")).json()["disclosure"] == "support"
    (changed,) = await intake.events("referral.consent_changed")
    assert (
        changed["previous"]["law_enforcement"] is True
        and changed["consent"]["law_enforcement"] is False
    )
    assert changed["facts"]["consent"]["law_enforcement"] is False
    status = (
        await intake.client.get(
            f"/v1/referrals/{referral_id}/status",
            headers=intake.mint.headers("labour-insp", *REFERRER),
        )
    ).json()
    assert {r["agency"]: r["disclosure"] for r in status["recipients"]} == {
        "mvd-ctu": "anonymous",
        "ngo-south": "support",
    }


async def test_status_follows_case_events_and_withdrawal_is_announced(intake: Intake) -> None:
    referral_id = (await intake.submit(REFERRAL_EXAMPLE)).json()["id"]
    await intake.route(referral_id, _decision("ngo-south", Disclosure.SUPPORT, "services"))
    at = datetime.now(UTC)
    await intake.publish(
        DeliveryNotified(
            delivery_id="d1", referral_id=referral_id, agency="ngo-south", channel="inbox"
        ),
        referral_id,
        "nrm.case-events.v1",
    )
    await intake.publish(
        ReferralAcknowledged(
            delivery_id="d1", referral_id=referral_id, agency="ngo-south", actor="ngo-south", at=at
        ),
        referral_id,
        "nrm.case-events.v1",
    )
    own = intake.mint.headers("labour-insp", *REFERRER)

    async def acknowledged() -> bool:
        r = await intake.client.get(f"/v1/referrals/{referral_id}/status", headers=own)
        return bool(r.json()["recipients"][0]["status"] == "acknowledged")

    await wait_for(acknowledged, timeout=30)
    status = (await intake.client.get(f"/v1/referrals/{referral_id}/status", headers=own)).json()
    (recipient,) = status["recipients"]
    assert recipient == {
        "agency": "ngo-south",
        "disclosure": "support",
        "status": "acknowledged",
        "deadline": recipient["deadline"],
        "rule": "rule-ngo-south",
    }
    assert (
        await intake.client.get(
            f"/v1/referrals/{referral_id}/status",
            headers=intake.mint.headers("ngo-south", "referrer"),
        )
    ).status_code == 404
    w = await intake.client.post(f"/v1/referrals/{referral_id}/withdraw", headers=own)
    assert w.status_code == 200 and w.json()["status"] == "withdrawn"
    (withdrawn,) = await intake.events("referral.withdrawn")
    assert withdrawn == {
        "referral_id": referral_id,
        "reference": status["reference"],
        "withdrawn_by": "labour-insp",
    }


async def test_concurrent_submissions_and_idempotent_retries(intake: Intake) -> None:
    results = await asyncio.gather(*(intake.submit(TIP_EXAMPLE) for _ in range(200)))
    assert all(r.status_code == 201 for r in results)
    references = {r.json()["reference"] for r in results}
    assert len(references) == 200
    key = uuid.uuid4().hex
    retries = await asyncio.gather(
        *(intake.submit(REFERRAL_EXAMPLE, **{"Idempotency-Key": key}) for _ in range(20))
    )
    assert {r.status_code for r in retries} <= {200, 201}
    assert [r.status_code for r in retries].count(201) == 1
    assert len({r.json()["id"] for r in retries}) == 1
    assert await intake.count(Referral) == 201
    other = await intake.submit(TIP_EXAMPLE, **{"Idempotency-Key": key})
    assert other.status_code == 409
    assert await intake.count(Referral) == 201
    # One key, two different bodies, all at once (they share a group commit): the first one
    # stored wins, the same body replays it, the other body conflicts.
    mixed_key = uuid.uuid4().hex
    bodies = [REFERRAL_EXAMPLE, TIP_EXAMPLE] * 5
    mixed = await asyncio.gather(
        *(intake.submit(b, **{"Idempotency-Key": mixed_key}) for b in bodies)
    )
    winner = next(b for b, r in zip(bodies, mixed, strict=True) if r.status_code == 201)
    for body, r in zip(bodies, mixed, strict=True):
        assert r.status_code in ((200, 201) if body == winner else (409,)), r.text
    assert [r.status_code for r in mixed].count(201) == 1
    assert await intake.count(Referral) == 202


async def test_lists_are_scoped_paginated_and_filtered(intake: Intake) -> None:
    ids = [(await intake.submit(TIP_EXAMPLE)).json()["id"] for _ in range(5)]
    await intake.submit(REFERRAL_EXAMPLE, agency="gp")
    own = intake.mint.headers("labour-insp", *REFERRER)
    page1 = (await intake.client.get("/v1/referrals?limit=3", headers=own)).json()
    page2 = (
        await intake.client.get(f"/v1/referrals?limit=3&cursor={page1['next_cursor']}", headers=own)
    ).json()
    assert [i["id"] for i in page1["items"] + page2["items"]] == ids[::-1]
    assert page2["next_cursor"] is None
    high = (await intake.client.get("/v1/referrals?urgency=routine", headers=own)).json()
    assert high["items"] == []
    await intake.route(ids[0], _decision("ngo-north", Disclosure.ANONYMOUS))
    inbox = (
        await intake.client.get(
            "/v1/referrals", headers=intake.mint.headers("ngo-north", *CASEWORKER)
        )
    ).json()
    assert [i["id"] for i in inbox["items"]] == [ids[0]]
    bad = await intake.client.get("/v1/referrals?cursor=%%%", headers=own)
    assert bad.status_code == 422  # the cursor's form is in the schema
    # A NUL byte in a filter is refused (PostgreSQL cannot take it as text: it was a 500).
    for query in ("status=sub%00mitted", "region=KZ-%0079"):
        r = await intake.client.get(f"/v1/referrals?{query}", headers=own)
        assert r.status_code == 422, (query, r.text)
    ok = await intake.client.get("/v1/referrals?status=submitted&region=KZ-39", headers=own)
    assert len(ok.json()["items"]) == 5


async def test_lists_page_by_one_opaque_cursor(intake: Intake) -> None:
    """Five referrals: an exactly full page is the last; two and a half pages give every
    referral once, newest first; a cursor that is not one of the list's is 422."""
    ids = [(await intake.submit(TIP_EXAMPLE)).json()["id"] for _ in range(5)]
    own = intake.mint.headers("labour-insp", *REFERRER)
    c = intake.client
    assert await walk(c, "/v1/referrals", headers=own, params={"limit": 5}, key="id") == [
        [ids[4], ids[3], ids[2], ids[1], ids[0]]
    ]
    assert await walk(c, "/v1/referrals", headers=own, params={"limit": 2}, key="id") == [
        [ids[4], ids[3]],
        [ids[2], ids[1]],
        [ids[0]],
    ]
    refused = (422, "application/problem+json", ["query/cursor"])
    assert await cursor_answers(c, "/v1/referrals", headers=own) == {
        "%%%": refused,
        "bm90IGpzb24": refused,
        "WyJ4Il0": (200, "application/json", []),
        "WzVd": refused,
    }
    dpo = intake.mint.headers("dpo", "dpo")
    assert await cursor_answers(c, "/v1/retention/erasures", headers=dpo) == {
        "%%%": refused,
        "bm90IGpzb24": refused,
        "WyJ4Il0": (200, "application/json", []),
        "WzVd": refused,
    }


async def test_a_page_of_referrals_an_agency_may_not_read_does_not_end_the_list(
    intake: Intake,
) -> None:
    """Three referrals routed to ngo-north; the newest two name it implicated. Its first page
    of two is empty (the implicated are left out after the fetch) but the list goes on to the
    third: the cursor follows what was fetched, not what was shown. A person who recused
    themselves from that one sees an empty list."""
    ids = [(await intake.submit(TIP_EXAMPLE)).json()["id"] for _ in range(3)]
    for rid in ids:
        await intake.route(rid, _decision("ngo-north", Disclosure.ANONYMOUS))
    submitter = intake.mint.headers("labour-insp", *REFERRER)
    for rid in ids[1:]:
        r = await intake.client.put(
            f"/v1/referrals/{rid}/implicated", json={"implicated": ["ngo-north"]}, headers=submitter
        )
        assert r.status_code == 200, r.text
    ngo = intake.mint.headers("ngo-north", *CASEWORKER)
    pages = await walk(intake.client, "/v1/referrals", headers=ngo, params={"limit": 2}, key="id")
    assert pages == [[], [ids[0]]]
    person = {
        "Authorization": "Bearer "
        + intake.mint.token("ngo-north", *CASEWORKER, client_id="console", person="p-7")
    }
    r = await intake.client.post(f"/v1/referrals/{ids[0]}/recusal", headers=person)
    assert r.status_code == 204, r.text
    assert await walk(intake.client, "/v1/referrals", headers=person, params={}, key="id") == [[]]
    assert await walk(intake.client, "/v1/referrals", headers=ngo, params={}, key="id") == [
        [ids[0]]
    ]


@pytest.mark.parametrize(
    ("method", "path", "roles"),
    [
        ("POST", "/v1/referrals", ("caseworker",)),
        ("POST", "/v1/referrals", ("auditor",)),
        ("GET", "/v1/referrals", ("auditor",)),
        ("GET", "/v1/referrals/x", ("admin",)),
        ("PUT", "/v1/referrals/x/consent", ("auditor",)),
        ("PUT", "/v1/referrals/x/implicated", ("auditor",)),
        ("POST", "/v1/referrals/x/withdraw", ("supervisor",)),
        ("GET", "/v1/referrals/x/status", ("caseworker",)),
    ],
)
async def test_roles_without_the_action_get_404(
    intake: Intake, method: str, path: str, roles: tuple[str, ...]
) -> None:
    r = await intake.client.request(method, path, headers=intake.mint.headers("gp", *roles))
    assert r.status_code == 404
    assert (await intake.events("access.denied"))[-1]["client_id"] == "gp"
    anonymous = await intake.client.request(method, path)
    assert anonymous.status_code == 401


# Who may call each endpoint, written out (not computed from the permission table under
# test): (method, path, roles allowed).
_CASE_STAFF = {Role.REFERRER, Role.CASEWORKER, Role.SUPERVISOR}
INTAKE_ENDPOINTS = [
    ("POST", "/v1/referrals", {Role.REFERRER}),
    ("GET", "/v1/referrals", _CASE_STAFF),
    ("GET", "/v1/referrals/{id}", _CASE_STAFF),
    ("PUT", "/v1/referrals/{id}/consent", _CASE_STAFF),
    ("POST", "/v1/referrals/{id}/withdraw", {Role.REFERRER}),
    ("GET", "/v1/referrals/{id}/status", {Role.REFERRER}),
    ("POST", "/v1/referrals/{id}/identification", {Role.SUPERVISOR}),
    ("POST", "/v1/referrals/{id}/investigation", {Role.CASEWORKER, Role.SUPERVISOR}),
    ("GET", "/v1/identification", {Role.SUPERVISOR}),
    ("GET", "/v1/referrals/{id}/hold", {Role.CASEWORKER, Role.SUPERVISOR}),
    # Supervisors: the national coordinator's only (the matrix asks as labour-insp).
    ("GET", "/v1/retention/erasures", {Role.DPO}),
]


async def test_role_endpoint_matrix(intake: Intake) -> None:
    """Every role x every intake endpoint: allowed or refused as the permission table says."""
    referral_id = (await intake.submit(REFERRAL_EXAMPLE)).json()["id"]
    consent = json.dumps(
        {
            "services": True,
            "law_enforcement": True,
            "statistics": True,
            "given_by": "self",
            "recorded_at": "2026-11-21T09:00:00Z",
        }
    )
    for role in Role:
        for method, template, allowed_roles in INTAKE_ENDPOINTS:
            path = template.format(id=referral_id)
            body = REFERRAL_EXAMPLE if method == "POST" and "{id}" not in template else consent
            before = await intake.events("access.denied")
            r = await intake.client.request(
                method,
                path,
                content=body if method in ("POST", "PUT") else None,
                headers={
                    "content-type": "application/json",
                    **intake.mint.headers("labour-insp", role.value),
                },
            )
            new = (await intake.events("access.denied"))[len(before) :]
            role_denials = [d for d in new if d["resource_type"] == "endpoint"]
            allowed = role in allowed_roles
            cell = f"{role.value} {method} {template}"
            if allowed:
                assert r.status_code != 401 and not role_denials, cell
                if role is Role.REFERRER:  # the submitting agency's referrer succeeds
                    assert r.status_code in (200, 201), (cell, r.text)
            else:
                assert r.status_code == 404, cell
                assert len(role_denials) == 1, cell


def erased_referral(referral_id: str) -> Referral:
    """An erased referral's row as intake keeps it: status `erased`, nothing sealed."""
    return Referral(
        id=referral_id,
        reference="NRM-2026-000001",
        kind="victim",
        status="erased",
        submitted_by="gp",
        submitted_by_client="gp",
        urgency="standard",
        region="EE",
        facts={},
        sealed=b"",
        wrapped_key=b"",
        master_key_id="k1",
    )


async def test_recipient_status_only_moves_forward(db: Database) -> None:
    """The consumed events' upserts: a case event may come before the routing decision (the
    row starts `anonymous`, then takes the decision's terms and keeps its status), a status
    never goes back (an equal rank takes the later one), an escalation ends the delivery, an
    implicated agency's row goes, and an erased referral takes nothing."""
    from contracts.events import RecipientDecision, ReferralRouted, RoutingReason
    from services.common.db import create_all, transaction
    from services.common.models import runtime_metadata
    from services.intake import service
    from services.intake.models import Recipient, intake_metadata

    await create_all(db.engine, intake_metadata, runtime_metadata)

    def ref(agency: str, delivery: str) -> ReferralAcknowledged:
        at = datetime.now(UTC)
        return ReferralAcknowledged(
            referral_id="r1", agency=agency, delivery_id=delivery, actor="staff", at=at
        )

    def routed(*agencies: str, **more: Any) -> ReferralRouted:
        decisions = [
            RecipientDecision(agency=a, disclosure=Disclosure.FULL, rule="r", deadline=None)
            for a in agencies
        ]
        return ReferralRouted.model_construct(  # type: ignore[call-arg]  # facts not needed
            referral_id="r1",
            recipients=decisions,
            removed=more.get("removed", []),
            reason=more.get("reason", RoutingReason.SUBMITTED),
            escalated_delivery_id=more.get("escalated"),
            identification=None,
        )

    async def rows() -> dict[str, tuple[str, str, str | None]]:
        async with db.sessions() as session:
            found = await session.exec(select(Recipient).where(Recipient.referral_id == "r1"))
            return {r.agency: (r.disclosure, r.status, r.delivery_id) for r in found}

    async with transaction(db.sessions) as session:
        await service.apply_case_event(session, event=ref("shelter", "d1"), status="notified")
        await service.apply_case_event(session, event=ref("shelter", "d1"), status="completed")
        await service.apply_case_event(session, event=ref("shelter", "d1"), status="acknowledged")
        await service.apply_case_event(session, event=ref("police", "d2"), status="accepted")
        await service.apply_case_event(session, event=ref("police", "d2"), status="declined")
    assert await rows() == {
        "shelter": ("anonymous", "completed", "d1"),
        "police": ("anonymous", "declined", "d2"),
    }
    async with transaction(db.sessions) as session:
        await service.apply_routed(session, routed=routed("shelter", "police", "ngo", "ngo"))
    assert await rows() == {
        "shelter": ("full", "completed", "d1"),
        "police": ("full", "declined", "d2"),
        "ngo": ("full", "routed", None),
    }
    async with transaction(db.sessions) as session:
        escalation = routed(
            "ngo", removed=["shelter"], reason=RoutingReason.ESCALATION, escalated="d2"
        )
        await service.apply_routed(session, routed=escalation)
        await service.apply_case_event(session, event=ref("police", "d2"), status="completed")
    assert await rows() == {
        "police": ("full", "escalated", "d2"),
        "ngo": ("full", "routed", None),
    }
    async with transaction(db.sessions) as session:
        session.add(erased_referral("r1"))
    async with transaction(db.sessions) as session:
        await service.apply_routed(session, routed=routed("later"))
        await service.apply_case_event(session, event=ref("ngo", "d3"), status="completed")
    assert await rows() == {
        "police": ("full", "escalated", "d2"),
        "ngo": ("full", "routed", None),
    }
