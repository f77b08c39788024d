"""The router through the real broker: submitted events in, `referral.routed` events out."""

import asyncio
import json
import os
import shutil
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func
from sqlmodel import col, select

from contracts.cloudevents import CloudEvent
from contracts.events import (
    ReferralConsentChanged,
    ReferralDeadlineMissed,
    ReferralDeclined,
    ReferralErased,
    ReferralRouted,
    ReferralSubmitted,
    ReferralWithdrawn,
)
from contracts.referrals import ConsentScopes
from contracts.vocabulary import ErasureBasis
from services.common.broker import EmbeddedBroker
from services.common.bus import create_producer
from services.common.db import create_all
from services.common.models import OutboxRecord, ProcessedEvent, runtime_metadata
from services.router.app import create_app
from services.router.models import Escalation, Recipient, RoutedReferral, router_metadata
from services.router.policy import PolicyError
from services.router.settings import EXAMPLE_POLICY, RouterSettings
from tests.support import Database, outbox_payloads, publish_event, read_topic, wait_for
from tests.tokens import AUDIENCE, ISSUER, TokenMint
from tests.unit.test_contracts import TIP_EXAMPLE
from tests.unit.test_routing_policy import CASES, facts_of, victim

ROOT = Path(__file__).resolve().parents[2]
ROUTING = "nrm.routing.v1"


def submitted(body: str, submitter: str) -> ReferralSubmitted:
    referral_id = str(uuid.uuid4())
    return ReferralSubmitted(
        referral_id=referral_id,
        reference=f"NRM-2026-{uuid.uuid4().int % 1_000_000:06d}",
        submitted_at=datetime.now(UTC),
        facts=facts_of(body, submitter),
    )


async def routed(
    bootstrap: str, until: Callable[[list[ReferralRouted]], bool], timeout: float = 30
) -> list[ReferralRouted]:
    """`referral.routed` payloads on the topic, once `until` holds for them."""

    def decode(records: list[Any]) -> list[ReferralRouted]:
        out = []
        for r in records:
            payload = CloudEvent.from_kafka(headers=r.headers, value=r.value).payload()
            assert isinstance(payload, ReferralRouted)
            out.append(payload)
        return out

    records = await read_topic(
        bootstrap, ROUTING, until=lambda rs: until(decode(rs)), timeout=timeout
    )
    return decode(records)


def of(referral_id: str) -> Callable[[list[ReferralRouted]], list[ReferralRouted]]:
    return lambda decisions: [d for d in decisions if d.referral_id == referral_id]


@dataclass
class Router:
    client: httpx.AsyncClient
    mint: TokenMint
    db: Database
    broker: EmbeddedBroker
    producer: AIOKafkaProducer
    settings: RouterSettings


@pytest.fixture
async def router(db: Database, own_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Router]:
    mint = TokenMint()
    policy_dir = tmp_path / "config"
    shutil.copytree(EXAMPLE_POLICY.parent, policy_dir)
    settings = RouterSettings(
        data_dir=tmp_path,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        policy_file=policy_dir / "routing.yaml",
    )
    app = create_app(settings, bootstrap=own_broker.bootstrap, engine=db.engine, jwks=mint.jwks)
    producer = create_producer(own_broker.bootstrap)
    await producer.start()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            yield Router(client, mint, db, own_broker, producer, settings)
    await producer.stop()


async def test_example_policy_end_to_end(router: Router) -> None:
    """Every case of the policy table, as submitted events through the broker."""
    sent = {}
    for case in CASES:
        event = submitted(case.body, case.submitter)
        await publish_event(router.producer, event, event.referral_id)
        sent[event.referral_id] = (case, event)
    decisions = await routed(router.broker.bootstrap, lambda ds: len(ds) >= len(CASES))
    assert len(decisions) == len(CASES)
    mismatches = []
    for decision in decisions:
        case, event = sent[decision.referral_id]
        got = {r.agency: (r.disclosure.value, r.rule) for r in decision.recipients}
        if got != case.expected:
            mismatches.append((case.id, got))
        assert decision.reason == "submitted"
        assert decision.reference == event.reference
        assert decision.policy_version.startswith("sha256:")
        assert decision.facts == event.facts
        for r in decision.recipients:
            assert r.deadline is not None
            # Rule 6: decided within a minute of now, so the deadline is now + the urgency's.
            assert abs(r.deadline - datetime.now(UTC) - case.deadline) < timedelta(minutes=1)
    assert not mismatches


async def test_consent_withdrawal_lowers_disclosure_and_withdrawal_anonymises(
    router: Router,
) -> None:
    event = submitted(victim(), "labour-insp")
    rid = event.referral_id
    await publish_event(router.producer, event, rid)
    await routed(router.broker.bootstrap, lambda ds: len(of(rid)(ds)) == 1)

    facts = event.facts.model_copy(
        update={"consent": ConsentScopes(services=True, law_enforcement=False, statistics=True)}
    )
    changed = ReferralConsentChanged(
        referral_id=rid,
        reference=event.reference,
        changed_by="labour-insp",
        previous=ConsentScopes(services=True, law_enforcement=True, statistics=True),
        consent=ConsentScopes(services=True, law_enforcement=False, statistics=True),
        facts=facts,
    )
    await publish_event(router.producer, changed, rid)
    decisions = await routed(router.broker.bootstrap, lambda ds: len(of(rid)(ds)) == 2)
    second = of(rid)(decisions)[1]
    assert second.reason == "consent_changed"
    # Only the change: the police drop to anonymous; the shelter's level did not change.
    assert [(r.agency, r.disclosure.value) for r in second.recipients] == [("mvd-ctu", "anonymous")]

    await publish_event(
        router.producer,
        ReferralWithdrawn(referral_id=rid, reference=event.reference, withdrawn_by="labour-insp"),
        rid,
    )
    decisions = await routed(router.broker.bootstrap, lambda ds: len(of(rid)(ds)) == 3)
    third = of(rid)(decisions)[2]
    assert third.reason == "withdrawn"
    assert {(r.agency, r.disclosure.value, r.deadline) for r in third.recipients} == {
        ("mvd-ctu", "anonymous", None),
        ("ngo-south", "anonymous", None),
    }


async def test_escalation_once_per_delivery(router: Router) -> None:
    """Rule 7: a decline or a missed deadline escalates to the coordinator, once per delivery."""
    event = submitted(victim(urgency="high"), "labour-insp")
    rid = event.referral_id
    await publish_event(router.producer, event, rid)
    await routed(router.broker.bootstrap, lambda ds: len(of(rid)(ds)) == 1)
    now = datetime.now(UTC)
    declined = ReferralDeclined(
        delivery_id="d-shelter",
        referral_id=rid,
        agency="ngo-south",
        actor="ngo-south",
        at=now,
        reason="no places",
    )
    missed_same = ReferralDeadlineMissed(
        delivery_id="d-shelter", referral_id=rid, agency="ngo-south", deadline=now, rule="x"
    )
    missed_police = ReferralDeadlineMissed(
        delivery_id="d-police", referral_id=rid, agency="mvd-ctu", deadline=now, rule="police"
    )
    for payload in (declined, missed_same, declined, missed_police):
        await publish_event(router.producer, payload, rid)
    await wait_for(lambda: _count(router.db, Escalation, 2), timeout=30)
    decisions = await routed(router.broker.bootstrap, lambda ds: len(of(rid)(ds)) >= 3)
    escalations = [d for d in of(rid)(decisions) if d.reason == "escalation"]
    assert sorted(d.escalated_delivery_id or "" for d in escalations) == ["d-police", "d-shelter"]
    for d in escalations:
        (r,) = d.recipients
        assert (r.agency, r.disclosure.value, r.rule) == (
            "nrm-coordinator",
            "support",
            "escalation",
        )
        assert r.deadline is not None and r.deadline - now < timedelta(hours=4, minutes=1)
    # The coordinator's own miss is recorded, not escalated to itself.
    coordinator_missed = ReferralDeadlineMissed(
        delivery_id="d-coord", referral_id=rid, agency="nrm-coordinator", deadline=now, rule="x"
    )
    await publish_event(router.producer, coordinator_missed, rid)
    await wait_for(lambda: _count(router.db, Escalation, 3), timeout=30)
    async with router.db.sessions() as session:
        row = await session.get(Escalation, "d-coord")
    assert row is not None and row.outcome.startswith("not escalated")
    assert len(await outbox_payloads(router.db, "referral.routed")) == 3


async def _count(db: Database, model: Any, n: int) -> bool:
    async with db.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one()) >= n


async def test_policy_api(router: Router) -> None:
    auditor = router.mint.headers("audit-office", "auditor")
    r = await router.client.get("/v1/routing/policy", headers=auditor)
    assert r.status_code == 200
    policy = r.json()
    assert policy["version"].startswith("sha256:")
    assert [rule["id"] for rule in policy["rules"]] == [
        "services-shelter",
        "police",
        "labour",
        "minor",
        "official-involvement",
        "high-risk",
    ]
    # The policy states what each level rests on: consent scopes, or a legal basis.
    assert {rule["id"]: rule["basis"] for rule in policy["rules"]}["minor"] == "child_protection"
    assert [
        (c["when"].get("consent"), c["level"], c["basis"])
        for c in policy["disclosure"]["coordinator"]
    ] == [
        (None, "full", "no_victim"),
        (None, "full", "child_protection"),
        (["services"], "support", None),
        (None, "anonymous", None),
    ]
    assert policy["escalation"] == {"to": "nrm-coordinator", "disclosure": "coordinator"}
    assert policy["deadlines"] == {"immediate": 3600, "high": 14400, "routine": 86400}
    r = await router.client.get(
        "/v1/routing/policy", headers=router.mint.headers("ngo-north", "caseworker")
    )
    assert r.status_code == 404


async def test_explain_is_a_dry_run(router: Router) -> None:
    r = await router.client.post(
        "/v1/routing/explain",
        content=victim(region="KZ-15", exploitation=["labour"]),
        headers={
            "content-type": "application/json",
            **router.mint.headers("ngo-north", "referrer"),
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["submitted_by"] == "ngo-north"
    assert {x["agency"]: (x["disclosure"], x["rule"], x["basis"]) for x in body["recipients"]} == {
        "nrm-coordinator": ("support", "services-shelter", "consent: services"),
        "mvd-ctu": ("full", "police", "consent: law_enforcement"),
        "labour-insp": ("full", "labour", "consent: law_enforcement"),
    }
    assert body["excluded"] == []
    rules = {x["rule"]: x for x in body["rules"]}
    assert rules["services-shelter"]["notes"] == [
        "no shelter covers KZ-15; fallback nrm-coordinator"
    ]
    assert rules["minor"] == {
        "rule": "minor",
        "matched": False,
        "unmet": ["minor is not true"],
        "selected": [],
        "notes": [],
    }
    # As another submitter (an admin checking a case), and with a bad body.
    r = await router.client.post(
        "/v1/routing/explain?submitted_by=mvd-ctu",
        content=victim(consent={"services": False, "law_enforcement": False, "statistics": False}),
        headers={"content-type": "application/json", **router.mint.headers("admin", "admin")},
    )
    assert [x["agency"] for x in r.json()["recipients"]] == ["nrm-coordinator"]
    # A tip naming the police implicated: the police are excluded, and explain says so.
    r = await router.client.post(
        "/v1/routing/explain",
        content=json.dumps({**json.loads(TIP_EXAMPLE), "implicated": ["mvd-ctu"]}),
        headers={"content-type": "application/json", **router.mint.headers("admin", "admin")},
    )
    body = r.json()
    assert body["excluded"] == [{"agency": "mvd-ctu", "excluded": "implicated"}]
    assert {x["agency"]: x["basis"] for x in body["recipients"]} == {
        "gp": "no_victim",
        "anti-corruption": "no_victim",
    }
    assert {x["rule"]: x["notes"] for x in body["rules"]}["police"] == [
        "mvd-ctu excluded: implicated"
    ]
    r = await router.client.post(
        "/v1/routing/explain",
        content=victim(region="KZ-99"),
        headers={
            "content-type": "application/json",
            **router.mint.headers("ngo-north", "referrer"),
        },
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "victim_referral/region"
    # Nothing stored, nothing published.
    assert not await _count(router.db, OutboxRecord, 1)
    assert not await _count(router.db, RoutedReferral, 1)


async def test_reload_keeps_the_old_policy_when_the_new_one_is_bad(router: Router) -> None:
    admin = router.mint.headers("admin", "admin")
    before = (await router.client.get("/v1/routing/policy", headers=admin)).json()["version"]
    path = router.settings.policy_path
    good = path.read_text()
    path.write_text(good.replace("- {agency: gp}", "- {agency: gpx}"))
    r = await router.client.post("/v1/routing/policy/reload", headers=admin)
    assert r.status_code == 422
    problem = r.json()
    assert before in problem["detail"]
    line = next(i + 1 for i, t in enumerate(path.read_text().splitlines()) if "gpx" in t)
    assert problem["errors"][0]["line"] == line
    assert f"routing.yaml:{line}:" in problem["errors"][0]["message"]
    assert (await router.client.get("/v1/routing/policy", headers=admin)).json()[
        "version"
    ] == before

    path.write_text(good.replace("high: 4h", "high: 2h"))
    r = await router.client.post("/v1/routing/policy/reload", headers=admin)
    assert r.status_code == 200
    assert r.json()["previous_version"] == before and r.json()["changed"] is True
    after = r.json()["version"]
    # Decisions from now on carry the new version; the reload itself is on the audit trail.
    event = submitted(victim(urgency="high"), "labour-insp")
    await publish_event(router.producer, event, event.referral_id)
    (decision,) = of(event.referral_id)(
        await routed(router.broker.bootstrap, lambda ds: bool(of(event.referral_id)(ds)))
    )
    assert decision.policy_version == after
    (reloaded,) = await outbox_payloads(router.db, "admin.changed")
    assert reloaded["action"] == "policy.reloaded" and reloaded["target_id"] == after
    caseworker = router.mint.headers("ngo-north", "caseworker")
    assert (
        await router.client.post("/v1/routing/policy/reload", headers=caseworker)
    ).status_code == 404


def test_a_bad_policy_file_keeps_the_router_from_starting(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_POLICY.parent, tmp_path / "config")
    path = tmp_path / "config" / "routing.yaml"
    path.write_text(path.read_text().replace("  routine: 24h\n", ""))
    settings = RouterSettings(data_dir=tmp_path, policy_file=path)
    with pytest.raises(PolicyError, match=r"routing.yaml:\d+: deadlines: no deadline for routine"):
        create_app(settings, bootstrap="127.0.0.1:1")


async def test_two_instances_one_killed_every_referral_routed_once(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """2,000 referrals through two router processes in one group; one is SIGKILLed mid-stream."""
    total = 2000
    await create_all(db.engine, router_metadata)  # not by both children at once
    producer = create_producer(own_broker.bootstrap)
    await producer.start()
    children = [await _router_child(db, own_broker, tmp_path) for _ in range(2)]
    try:
        events = [submitted(victim(urgency="high"), "labour-insp") for _ in range(total)]
        for event in events[: total // 2]:
            await publish_event(producer, event, event.referral_id)
        # Kill one instance once decisions are flowing, while half the stream is still to come.
        await routed(own_broker.bootstrap, lambda ds: len(ds) >= 200, timeout=60)
        children[0].send_signal(signal.SIGKILL)
        assert await children[0].wait() == -signal.SIGKILL
        for event in events[total // 2 :]:
            await publish_event(producer, event, event.referral_id)
        expected = {e.referral_id for e in events}
        decisions = await routed(
            own_broker.bootstrap,
            lambda ds: {d.referral_id for d in ds} >= expected,
            timeout=120,
        )
    finally:
        for child in children:
            if child.returncode is None:
                child.terminate()
                await child.wait()
        await producer.stop()
    # Exactly one decision per referral. The same decision may be on the topic twice (a relay
    # killed between the broker's ack and marking its outbox row); consumers drop those by id.
    per_referral = Counter(d.referral_id for d in {d.decision_id: d for d in decisions}.values())
    assert set(per_referral) == expected
    assert set(per_referral.values()) == {1}
    async with db.sessions() as session:
        stored = (await session.exec(select(func.count()).select_from(RoutedReferral))).one()
    assert stored == total


async def _router_child(db: Database, broker: EmbeddedBroker, data: Path) -> Any:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.router_child",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "CHILD_DB_URL": db.url,
            "CHILD_DB_SCHEMA": db.schema or "",
            "CHILD_BOOTSTRAP": broker.bootstrap,
            "CHILD_DATA_DIR": str(data),
        },
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
    assert line.strip() == b"ready"
    return child


# Erasure (issue 23)

# A key of the facts object alone: nothing else the router stores spells it.
PROFILE = "foreign_citizen"


def _database_files(db: Database) -> list[Path]:
    path = Path(db.url.split("///", 1)[1])
    return [f for f in (path, path.with_name(path.name + "-wal")) if f.exists()]


async def _stored_text(db: Database) -> str:
    """Every row of every router and runtime table, as text (both databases)."""
    out = []
    async with db.engine.connect() as conn:
        for metadata in (router_metadata, runtime_metadata):
            for table in metadata.sorted_tables:
                out += [repr(tuple(row)) for row in (await conn.execute(table.select())).all()]
    return "\n".join(out)


async def _processed(db: Database, event_id: str) -> bool:
    async with db.sessions() as session:
        found = await session.exec(
            select(func.count())
            .select_from(ProcessedEvent)
            .where(ProcessedEvent.event_id == event_id)
        )
        return int(found.one()) == 1


async def test_erasure_keeps_the_decisions_and_drops_the_profile(router: Router) -> None:
    event = submitted(victim(victim={"citizenship": "UZ"}), "labour-insp")
    rid = event.referral_id
    await publish_event(router.producer, event, rid)
    await routed(router.broker.bootstrap, lambda ds: len(of(rid)(ds)) == 1)
    now = datetime.now(UTC)
    declined = ReferralDeclined(
        delivery_id="d-shelter", referral_id=rid, agency="ngo-south", actor="x", at=now, reason="-"
    )
    await publish_event(router.producer, declined, rid)
    await routed(router.broker.bootstrap, lambda ds: len(of(rid)(ds)) == 2)
    submitter = router.mint.headers("labour-insp", "referrer")
    r = await router.client.get(f"/v1/routing/referrals/{rid}/escalations", headers=submitter)
    assert [(e["agency"], e["outcome"]) for e in r.json()] == [
        ("ngo-south", "escalated to nrm-coordinator (support)")
    ]

    async def outbox_delivered() -> bool:
        async with router.db.sessions() as session:
            pending = await session.exec(
                select(func.count())
                .select_from(OutboxRecord)
                .where(col(OutboxRecord.delivered_at).is_(None))
            )
            return int(pending.one()) == 0

    await wait_for(outbox_delivered, timeout=15)
    assert PROFILE in await _stored_text(router.db)
    if router.db.kind == "sqlite":
        assert any(PROFILE.encode() in f.read_bytes() for f in _database_files(router.db))

    erased = await publish_event(
        router.producer,
        ReferralErased(referral_id=rid, basis=ErasureBasis.RETENTION_EXPIRED),
        rid,
        source="intake",
    )

    async def is_erased() -> bool:
        async with router.db.sessions() as session:
            row = await session.get(RoutedReferral, rid)
            return row is not None and row.erased_at is not None

    await wait_for(is_erased, timeout=15)
    async with router.db.sessions() as session:
        row = await session.get(RoutedReferral, rid)
        assert row is not None
        assert (row.reference, row.submitted_by, row.facts, row.withdrawn) == (
            event.reference,
            "labour-insp",
            {},
            False,
        )
        assert row.policy_version.startswith("sha256:")
        erased_at = row.erased_at
        kept = await session.exec(
            select(Recipient).where(Recipient.referral_id == rid).order_by(col(Recipient.agency))
        )
        assert [(k.agency, k.disclosure, k.rule, k.requires_consent) for k in kept] == [
            ("mvd-ctu", "full", "police", ["law_enforcement"]),
            ("ngo-south", "support", "services-shelter", ["services"]),
            ("nrm-coordinator", "support", "escalation", ["services"]),
        ]
    # The submitter's view of the referral's escalations is gone.
    r = await router.client.get(f"/v1/routing/referrals/{rid}/escalations", headers=submitter)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"

    # Later events decide nothing: a missed deadline is recorded as not escalated, a consent
    # change and a redelivered erasure change nothing.
    missed = ReferralDeadlineMissed(
        delivery_id="d-police", referral_id=rid, agency="mvd-ctu", deadline=now, rule="x"
    )
    consent = ReferralConsentChanged(
        referral_id=rid,
        reference=event.reference,
        changed_by="labour-insp",
        previous=ConsentScopes(services=True, law_enforcement=True, statistics=True),
        consent=ConsentScopes(services=True, law_enforcement=False, statistics=True),
        facts=event.facts,
    )
    late = [
        await publish_event(router.producer, missed, rid),
        await publish_event(router.producer, consent, rid),
        await publish_event(
            router.producer,
            ReferralErased(referral_id=rid, basis=ErasureBasis.RETENTION_EXPIRED),
            rid,
            source="intake",
        ),
    ]
    assert await _processed(router.db, erased.id)
    for e in late:
        await wait_for(lambda e=e: _processed(router.db, e.id), timeout=15)  # type: ignore[misc]
    async with router.db.sessions() as session:
        police = await session.get(Escalation, "d-police")
        assert police is not None and police.outcome == "not escalated: referral erased"
        row = await session.get(RoutedReferral, rid)
        assert row is not None and (row.erased_at, row.facts) == (erased_at, {})
        # No decision staged since, and the delivered ones gone. (The 404 above is audited
        # through the outbox: `access.denied`, no profile in it, stays until it is delivered.)
        staged = await session.exec(
            select(col(OutboxRecord.event_type)).where(
                col(OutboxRecord.event_type) != "access.denied"
            )
        )
        assert list(staged) == []
    decisions = await routed(router.broker.bootstrap, lambda ds: len(of(rid)(ds)) >= 2)
    assert len(of(rid)(decisions)) == 2

    assert PROFILE not in await _stored_text(router.db)
    if router.db.kind == "sqlite":

        async def files_clean() -> bool:
            return not any(PROFILE.encode() in f.read_bytes() for f in _database_files(router.db))

        await wait_for(files_clean, timeout=15)
    ledger = (router.settings.data_dir / "router-erasure-ledger.jsonl").read_text()
    assert rid in ledger and "retention_expired" in ledger
