"""Insights through a real broker: events in, suppressed statistics out (JSON and CSV, role
guarded), and a rebuild from the topics into an empty database that gives the same numbers."""

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func
from sqlmodel import col, select

from contracts.cloudevents import CloudEvent
from contracts.events import (
    IdentificationDecided,
    InvestigationRecorded,
    Payload,
    RecipientDecision,
    ReferralAcknowledged,
    ReferralConsentChanged,
    ReferralErased,
    ReferralRouted,
    ReferralSubmitted,
    RoutingReason,
)
from contracts.referrals import ConsentScopes, RoutingFacts, VictimStatistics
from contracts.topics import CASE_EVENTS, REFERRALS, ROUTING, topic_for_type
from contracts.vocabulary import AgeBand, ErasureBasis, IdentificationDecision, Sex, VictimStatus
from services.common.broker import EmbeddedBroker
from services.common.bus import create_producer
from services.common.models import ProcessedEvent
from services.insights.app import create_app
from services.insights.models import DeliveryFact, ErasedReferral, ReferralFact
from services.insights.settings import InsightsSettings
from tests.conftest import open_database
from tests.support import SESSION_TIMEOUT_MS, Database, wait_for
from tests.tokens import AUDIENCE, ISSUER, TokenMint

ROUTED_AT = datetime(2026, 11, 2, tzinfo=UTC)
SUBMITTED_AT = datetime(2025, 2, 10, tzinfo=UTC)
CONSENT = ConsentScopes(services=True, law_enforcement=True, statistics=True)
NO_STATISTICS = ConsentScopes(services=True, law_enforcement=True, statistics=False)


async def publish(producer: AIOKafkaProducer, payload: Payload, subject: str, at: datetime) -> None:
    event = CloudEvent.new(source="test", payload=payload, subject=subject).model_copy(
        update={"time": at}
    )
    record = event.to_kafka()
    topic = topic_for_type(event.type).name
    for _ in range(2):  # every record twice: the projection counts each event once
        await producer.send_and_wait(topic, record.value, key=record.key, headers=record.headers)


def referral(region: str, exploitation: str, sex: str, kind: str = "victim_referral") -> Any:
    rid = str(uuid.uuid4())
    victim = kind == "victim_referral"
    facts = RoutingFacts(
        kind=kind,
        submitted_by="labour-insp",
        region=region,
        urgency="routine",
        exploitation=[exploitation],
        consent=CONSENT if victim else None,
    )
    stats = VictimStatistics(age_band=AgeBand.AGE_24_26, sex=Sex(sex)) if victim else None
    return ReferralSubmitted(
        referral_id=rid,
        reference=f"NRM-2025-{uuid.uuid4().int % 1_000_000:06d}",
        submitted_at=SUBMITTED_AT,
        facts=facts,
        statistics=stats,
    )


async def feed(producer: AIOKafkaProducer) -> None:
    """Eleven referrals in 2025-Q1; recipients acknowledging after known hours in 2026-Q4.

    KZ-79: five victims (female) and a tip; ngo-south acknowledges three after 1 h and two
    after 30 h (deadline 24 h); one victim later withdraws consent to statistics.
    KZ-39: four victims (male); mvd-ctu acknowledges each after 2 h.
    KZ-11: one victim (female); gp acknowledges after 5 h.

    Identification (`identify`): reasonable grounds for KZ-39's four (after 48 h, two then
    confirmed), three of KZ-79's (96, 96, 120 h; a fourth none, after 24 h) and KZ-11's one
    (by another authority, after 10 h); investigations opened for three of KZ-39's, and one
    of KZ-79's recorded opened, then not.
    """
    plan = (
        [("KZ-79", "sexual", "female", "ngo-south", h) for h in (1, 1, 1, 30, 30)]
        + [("KZ-39", "labour", "male", "mvd-ctu", 2)] * 4
        + [("KZ-11", "sexual", "female", "gp", 5)]
    )
    first_kz79 = None
    by_region: dict[str, list[ReferralSubmitted]] = {}
    for region, exploitation, sex, agency, hours in plan:
        submitted = referral(region, exploitation, sex)
        rid = submitted.referral_id
        first_kz79 = first_kz79 or submitted
        by_region.setdefault(region, []).append(submitted)
        await publish(producer, submitted, rid, SUBMITTED_AT)
        routed = ReferralRouted(
            referral_id=rid,
            reference=submitted.reference,
            decision_id=str(uuid.uuid4()),
            reason=RoutingReason.SUBMITTED,
            policy_version="sha256:test",
            facts=submitted.facts,
            recipients=[
                RecipientDecision(
                    agency=agency,
                    disclosure="support",
                    rule="test",
                    deadline=ROUTED_AT + timedelta(hours=24),
                )
            ],
        )
        await publish(producer, routed, rid, ROUTED_AT)
        ack = ReferralAcknowledged(
            delivery_id=f"d-{rid}",
            referral_id=rid,
            agency=agency,
            actor=agency,
            at=ROUTED_AT + timedelta(hours=hours),
        )
        await publish(producer, ack, rid, ROUTED_AT + timedelta(hours=hours))
    tip = referral("KZ-79", "sexual", "unknown", kind="tip")
    await publish(producer, tip, tip.referral_id, SUBMITTED_AT)
    assert first_kz79 is not None
    withdrawn = ReferralConsentChanged(
        referral_id=first_kz79.referral_id,
        reference=first_kz79.reference,
        changed_by="labour-insp",
        previous=CONSENT,
        consent=NO_STATISTICS,
        facts=first_kz79.facts.model_copy(update={"consent": NO_STATISTICS}),
        statistics=None,
    )
    await publish(producer, withdrawn, first_kz79.referral_id, SUBMITTED_AT)
    await identify(producer, by_region)


async def decide(
    producer: AIOKafkaProducer,
    submitted: ReferralSubmitted,
    decision: IdentificationDecision,
    hours: int,
    authority: str = "mvd-ctu",
) -> None:
    previous = {
        IdentificationDecision.REASONABLE_GROUNDS: VictimStatus.POTENTIAL,
        IdentificationDecision.NO_REASONABLE_GROUNDS: VictimStatus.POTENTIAL,
        IdentificationDecision.CONFIRMED: VictimStatus.REASONABLE_GROUNDS,
        IdentificationDecision.NOT_CONFIRMED: VictimStatus.REASONABLE_GROUNDS,
    }[decision]
    at = SUBMITTED_AT + timedelta(hours=hours)
    decided = IdentificationDecided(
        referral_id=submitted.referral_id,
        reference=submitted.reference,
        authority=authority,
        decision=decision,
        previous=previous,
        decided_at=at,
        facts=submitted.facts.model_copy(update={"victim_status": VictimStatus(decision.value)}),
    )
    await publish(producer, decided, submitted.referral_id, at)


async def investigate(
    producer: AIOKafkaProducer, submitted: ReferralSubmitted, opened: bool
) -> None:
    recorded = InvestigationRecorded(
        referral_id=submitted.referral_id,
        reference=submitted.reference,
        agency="mvd-ctu",
        opened=opened,
        date=SUBMITTED_AT.date(),
    )
    await publish(producer, recorded, submitted.referral_id, SUBMITTED_AT)


async def identify(
    producer: AIOKafkaProducer, by_region: dict[str, list[ReferralSubmitted]]
) -> None:
    rg, no_rg = (
        IdentificationDecision.REASONABLE_GROUNDS,
        IdentificationDecision.NO_REASONABLE_GROUNDS,
    )
    kz39, kz79, (kz11,) = by_region["KZ-39"], by_region["KZ-79"], by_region["KZ-11"]
    for submitted in kz39:
        await decide(producer, submitted, rg, 48)
    for submitted in kz39[:2]:
        await decide(producer, submitted, IdentificationDecision.CONFIRMED, 200)
    for submitted, hours in zip(kz79[:3], (96, 96, 120), strict=True):
        await decide(producer, submitted, rg, hours)
    await decide(producer, kz79[3], no_rg, 24)
    await decide(producer, kz11, rg, 10, authority="child-rights")
    for submitted in kz39[:3]:
        await investigate(producer, submitted, True)
    await investigate(producer, kz79[0], True)
    await investigate(producer, kz79[0], False)  # the last record counts


EVENTS = 48  # distinct events `feed` publishes (each twice)


async def projected(db: Database) -> bool:
    async with db.sessions() as session:
        referrals = (await session.exec(select(func.count()).select_from(ReferralFact))).one()
        acks = (
            await session.exec(
                select(func.count()).where(col(DeliveryFact.acknowledged_at).is_not(None))
            )
        ).one()
        withheld = (
            await session.exec(
                select(func.count()).where(
                    ReferralFact.kind == "victim_referral",
                    col(ReferralFact.statistics_consent).is_(False),
                )
            )
        ).one()
        routed = (
            await session.exec(select(func.count()).where(col(DeliveryFact.routed_at).is_not(None)))
        ).one()
        applied = (
            await session.exec(
                select(func.count()).where(col(ProcessedEvent.consumer) == "insights")
            )
        ).one()
    return (referrals, acks, withheld, routed, applied) == (11, 10, 1, 10, EVENTS)


async def rewind(bootstrap: str, group: str, topics: list[str]) -> None:
    """What an operator does to rebuild (`kafka-consumer-groups --reset-offsets --to-earliest`):
    join the group alone and commit the start of every partition of its topics."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=SESSION_TIMEOUT_MS // 3,
    )
    await consumer.start()
    try:

        async def assigned() -> bool:
            await consumer.getmany(timeout_ms=100)
            return {tp.topic for tp in consumer.assignment()} == set(topics)

        await wait_for(assigned, timeout=30)
        partitions = list(consumer.assignment())
        await consumer.commit(await consumer.beginning_offsets(partitions))
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def insights(
    db: Database, bootstrap: str, mint: TokenMint, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = InsightsSettings(
        data_dir=tmp_path,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        k=3,
        period_months=3,
    )
    app = create_app(settings, bootstrap=bootstrap, engine=db.engine, jwks=mint.jwks)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://insights") as client:
            yield client


QUESTIONS = [
    "from=2025-01&to=2025-03&by=region",
    "from=2025-01&to=2025-03&by=sex",
    "from=2025-01&to=2025-03&by=region&measure=acknowledged_in_time",
    "from=2025-01&to=2025-03&by=region,exploitation",
    "from=2026-10&to=2026-12&by=agency&measure=time_to_acknowledge",
    "from=2025-01&to=2025-03&measure=funnel",
    "from=2025-01&to=2025-03&by=region&measure=reasonable_grounds",
    "from=2025-01&to=2025-03&by=agency&measure=time_to_reasonable_grounds",
]


async def test_statistics_from_the_topics_and_rebuilt_from_scratch(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    mint = TokenMint()
    analyst = mint.headers("analyst", "analyst")
    producer = create_producer(own_broker.bootstrap)
    await producer.start()
    try:
        await feed(producer)
    finally:
        await producer.stop()
    async with insights(db, own_broker.bootstrap, mint, tmp_path) as client:
        await wait_for(lambda: projected(db), timeout=60)

        r = await client.get("/v1/statistics?" + QUESTIONS[0], headers=analyst)
        assert r.status_code == 200, r.text
        # k = 3: KZ-11 (1) is below k; alone it could be recomputed from the total, so the
        # smallest other region (KZ-39, 4) is suppressed with it.
        assert r.json() == {
            "k": 3,
            "from": "2025-01",
            "to": "2025-03",
            "by": ["region"],
            "measure": "referrals",
            "cells": [
                {"region": "KZ-11", "value": None, "suppressed": True},
                {"region": "KZ-39", "value": None, "suppressed": True},
                {"region": "KZ-79", "value": 6, "suppressed": False},
            ],
            "total": {"value": 11, "suppressed": False},
        }

        # Sex only where the victim consents to statistics: one KZ-79 victim withdrew it.
        r = await client.get("/v1/statistics?" + QUESTIONS[1], headers=analyst)
        cells = {c["sex"]: c["value"] for c in r.json()["cells"]}
        assert cells == {
            "female": 5,
            "male": 4,
            "other": None,
            "unknown": None,
            "withheld": None,
            "not_applicable": None,
        }

        # The minor flag is a victim attribute too: withheld without consent to statistics.
        r = await client.get("/v1/statistics?from=2025-01&to=2025-03&by=minor", headers=analyst)
        cells = {c["minor"]: c["value"] for c in r.json()["cells"]}
        assert cells == {"true": None, "false": 9, "withheld": None, "not_applicable": None}

        # Acknowledged in time: three of KZ-79's five, KZ-39's four, KZ-11's one.
        r = await client.get("/v1/statistics?" + QUESTIONS[2], headers=analyst)
        cells = {c["region"]: c["value"] for c in r.json()["cells"]}
        assert cells == {"KZ-11": None, "KZ-39": 4, "KZ-79": None}
        assert r.json()["total"] == {"value": 8, "suppressed": False}

        # Hours to acknowledge per recipient: gp's single time is withheld, and mvd-ctu's
        # with it; ngo-south's five give a median of 1 h and a 90th percentile of 30 h.
        r = await client.get("/v1/statistics?" + QUESTIONS[4], headers=analyst)
        assert r.json()["cells"] == [
            {"agency": "gp", "value": None, "p90": None, "n": None, "suppressed": True},
            {"agency": "mvd-ctu", "value": None, "p90": None, "n": None, "suppressed": True},
            {"agency": "ngo-south", "value": 1.0, "p90": 30.0, "n": 5, "suppressed": False},
        ]
        assert r.json()["total"] == {"value": 2.0, "p90": 30.0, "n": 10, "suppressed": False}

        # The NRM funnel (k = 3): each stage counted on its own. Nobody accepted (0) and two
        # were confirmed: both below k, withheld, not shown as 0.
        r = await client.get("/v1/statistics?" + QUESTIONS[5], headers=analyst)
        assert r.json() == {
            "k": 3,
            "from": "2025-01",
            "to": "2025-03",
            "by": ["stage"],
            "measure": "funnel",
            "cells": [
                {"stage": "submitted", "value": 11, "suppressed": False},
                {"stage": "acknowledged_in_time", "value": 8, "suppressed": False},
                {"stage": "accepted", "value": None, "suppressed": True},
                {"stage": "reasonable_grounds", "value": 8, "suppressed": False},
                {"stage": "confirmed", "value": None, "suppressed": True},
                {"stage": "investigation_opened", "value": 3, "suppressed": False},
            ],
            "total": {"value": 11, "suppressed": False},
            "notes": [
                "stages of referrals and tips submitted in the period, each counted on its own"
            ],
        }
        # A stage by region: KZ-11's one is withheld, and KZ-79's three with it.
        r = await client.get("/v1/statistics?" + QUESTIONS[6], headers=analyst)
        cells = {c["region"]: c["value"] for c in r.json()["cells"]}
        assert cells == {"KZ-11": None, "KZ-39": 4, "KZ-79": None}
        assert r.json()["total"] == {"value": 8, "suppressed": False}
        # Hours from submission to the reasonable-grounds decision (either way), per
        # authority: child-rights' single one is withheld, and mvd-ctu's eight with it; the
        # nine give a median of 48 h and a 90th percentile of 120 h.
        r = await client.get("/v1/statistics?" + QUESTIONS[7], headers=analyst)
        assert r.json()["cells"] == [
            {"agency": "child-rights", "value": None, "p90": None, "n": None, "suppressed": True},
            {"agency": "mvd-ctu", "value": None, "p90": None, "n": None, "suppressed": True},
        ]
        assert r.json()["total"] == {"value": 48.0, "p90": 120.0, "n": 9, "suppressed": False}

        r = await client.get(
            "/v1/statistics?" + QUESTIONS[0], headers=analyst | {"Accept": "text/csv"}
        )
        assert r.headers["content-type"].startswith("text/csv")
        assert r.text == (
            "region,value,suppressed\r\n"
            "KZ-11,,true\r\n"
            "KZ-39,,true\r\n"
            "KZ-79,6,false\r\n"
            "total,11,false\r\n"
        )

        # Who may ask: analysts and the coordinator's supervisors; nobody else learns anything.
        coordinator = mint.headers("nrm-coordinator", "supervisor")
        r = await client.get("/v1/statistics?" + QUESTIONS[0], headers=coordinator)
        assert r.status_code == 200
        for headers in (mint.headers("ngo-south", "supervisor"), mint.headers("gp", "caseworker")):
            r = await client.get("/v1/statistics?" + QUESTIONS[0], headers=headers)
            assert r.status_code == 404
            assert r.headers["content-type"] == "application/problem+json"
        r = await client.get("/v1/statistics?" + QUESTIONS[0])
        assert r.status_code == 401

        # Bad questions: problem+json naming the parameter.
        for query, path in (
            ("from=2025-02&to=2025-03", "query/from"),  # not the start of a quarter
            ("from=2025-01&to=2025-02", "query/to"),
            ("from=2025-01&to=2025-03&by=name", "query/by"),
            ("from=2025-01&to=2025-03&by=region,sex,kind", "query/by"),
            ("from=2025-01&to=2025-03&measure=names", "query/measure"),
            ("from=2025-01&to=2025-03&measure=funnel&by=region", "query/by"),
            ("from=1969-01&to=2025-03", "query/from"),
            ("from=2025-01&to=2040-12", "query/to"),  # longer than ten years
        ):
            r = await client.get("/v1/statistics?" + query, headers=analyst)
            assert r.status_code == 422, query
            assert r.headers["content-type"] == "application/problem+json"
            assert path in {e["path"] for e in r.json()["errors"]}, r.json()
        r = await client.get("/v1/statistics?from=2025-13&to=2025-12", headers=analyst)
        assert r.status_code == 422

        answers = {}
        for question in QUESTIONS:
            answers[question] = (
                await client.get(f"/v1/statistics?{question}", headers=analyst)
            ).json()

    # Rebuild: an empty database, the group's offsets rewound, the same topics read again.
    await rewind(own_broker.bootstrap, "insights", [REFERRALS.name, ROUTING.name, CASE_EVENTS.name])
    async with contextlib.AsyncExitStack() as stack:
        fresh = await stack.enter_async_context(open_database(db.kind, tmp_path / "replay"))
        client = await stack.enter_async_context(
            insights(fresh, own_broker.bootstrap, mint, tmp_path)
        )
        await wait_for(lambda: projected(fresh), timeout=60)
        for question in QUESTIONS:
            r = await client.get(f"/v1/statistics?{question}", headers=analyst)
            assert r.json() == answers[question], question


async def test_erasure_keeps_every_answer_and_cuts_the_link(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    mint = TokenMint()
    analyst = mint.headers("analyst", "analyst")
    producer = create_producer(own_broker.bootstrap)
    await producer.start()
    try:
        await feed(producer)
        async with insights(db, own_broker.bootstrap, mint, tmp_path) as client:
            await wait_for(lambda: projected(db), timeout=60)
            before = {}
            for question in QUESTIONS:
                r = await client.get("/v1/statistics?" + question, headers=analyst)
                assert r.status_code == 200, r.text
                before[question] = r.json()
            async with db.sessions() as session:
                kz39 = list(
                    await session.exec(
                        select(ReferralFact.referral_id).where(ReferralFact.region == "KZ-39")
                    )
                )
            assert len(kz39) == 4
            for rid in kz39:
                await publish(
                    producer,
                    ReferralErased(referral_id=rid, basis=ErasureBasis.COURT_ORDER),
                    rid,
                    ROUTED_AT + timedelta(days=30),
                )

            def applied(erasures: int, events: int) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    async with db.sessions() as session:
                        done = await session.exec(select(func.count()).select_from(ErasedReferral))
                        seen = await session.exec(
                            select(func.count()).where(col(ProcessedEvent.consumer) == "insights")
                        )
                        return (int(done.one()), int(seen.one())) == (erasures, events)

                return check

            await wait_for(applied(4, EVENTS + 4), timeout=30)
            # A late acknowledgement of an erased referral is not counted again. (Published only
            # once the erasure is applied: it comes on another topic, so the broker does not
            # order the two.)
            late = ReferralAcknowledged(
                delivery_id="d-late", referral_id=kz39[0], agency="gp", actor="gp", at=ROUTED_AT
            )
            await publish(producer, late, kz39[0], ROUTED_AT)
            await wait_for(applied(4, EVENTS + 5), timeout=30)
            for question in QUESTIONS:
                r = await client.get("/v1/statistics?" + question, headers=analyst)
                assert r.json() == before[question], question
            r = await client.get("/v1/statistics?" + QUESTIONS[0], headers=analyst)
            assert r.json()["cells"] == [
                {"region": "KZ-11", "value": None, "suppressed": True},
                {"region": "KZ-39", "value": None, "suppressed": True},
                {"region": "KZ-79", "value": 6, "suppressed": False},
            ]
            assert r.json()["total"] == {"value": 11, "suppressed": False}
            async with db.sessions() as session:
                referrals = list(await session.exec(select(ReferralFact)))
                deliveries = list(await session.exec(select(DeliveryFact)))
            assert (len(referrals), len(deliveries)) == (11, 10)
            ids = {r.referral_id for r in referrals} | {d.referral_id for d in deliveries}
            assert not ids & set(kz39)  # the facts are no longer linked to the referral ids
            moved = [r for r in referrals if r.region == "KZ-39"]
            assert len(moved) == 4 and all(r.month == "2025-02" for r in moved)
            # Shifted in time, the same month and the same durations: 2 h to acknowledge.
            police = [d for d in deliveries if d.agency == "mvd-ctu"]
            assert len(police) == 4
            assert all(
                d.acknowledged_at is not None
                and d.routed_at is not None
                and d.acknowledged_at - d.routed_at == timedelta(hours=2)
                and d.routed_at.strftime("%Y-%m") == "2026-11"
                for d in police
            )
            ledger = (tmp_path / "insights-erasure-ledger.jsonl").read_text()
            assert all(rid in ledger for rid in kz39)
    finally:
        await producer.stop()
