"""Router, notify and intake stage a batch's hot-path writes and write them before the transaction
commits (`db.staged`): each referral is still routed once, each agency gets one delivery, and
what a later event of the same transaction reads or announces comes after what was staged."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from contracts.events import (
    DeliveryNotified,
    RecipientDecision,
    ReferralAccepted,
    ReferralAcknowledged,
    ReferralRouted,
    ReferralSubmitted,
    ReferralWithdrawn,
    RoutingReason,
)
from contracts.referrals import RoutingFacts
from contracts.vocabulary import Disclosure, ReferralKind, Urgency
from services.common.db import create_all, transaction
from services.insights import service as insights
from services.insights.models import DeliveryFact, ReferralFact, insights_metadata
from services.intake import service as intake
from services.intake.models import Recipient as IntakeRecipient
from services.intake.models import intake_metadata
from services.notify import service as notify
from services.notify.models import Delivery, DeliveryChange, ErasedReferral, notify_metadata
from services.router import service as router
from services.router.models import Recipient, router_metadata
from tests.integration.test_intake import erased_referral
from tests.support import Database, outbox_payloads
from tests.unit.test_routing_policy import NOW, POLICY, facts_of, victim


def submission(body: str) -> ReferralSubmitted:
    referral_id = str(uuid.uuid4())
    return ReferralSubmitted(
        referral_id=referral_id,
        reference="NRM-2026-000042",
        submitted_at=NOW,
        facts=facts_of(body, "labour-insp"),
    )


def submitted_as(referral_id: str) -> ReferralSubmitted:
    return ReferralSubmitted(
        referral_id=referral_id,
        reference="NRM-2026-000042",
        submitted_at=NOW,
        facts=facts_of(victim(), "labour-insp"),
    )


async def recipients(db: Database) -> dict[tuple[str, str], str]:
    async with db.sessions() as session:
        rows = await session.exec(select(Recipient))
        return {(r.referral_id, r.agency): r.disclosure for r in rows}


async def test_router_batch_routes_each_referral_once_in_decision_order(db: Database) -> None:
    await create_all(db.engine, router_metadata)
    a, b = submission(victim()), submission(victim(region="KZ-15"))
    no_police = facts_of(victim(consent={"law_enforcement": False}), "labour-insp")
    async with transaction(db.sessions) as session:
        assert await router.route_submitted(session, policy=POLICY, submitted=a, now=NOW)
        # A second submission of the referral in the same transaction is not routed again.
        assert await router.route_submitted(session, policy=POLICY, submitted=a, now=NOW) is None
        assert await router.route_submitted(session, policy=POLICY, submitted=b, now=NOW)
        # Reads what was staged: `a` and its recipients are known to it.
        assert await router.route_facts_changed(
            session,
            policy=POLICY,
            referral_id=a.referral_id,
            reference=a.reference,
            facts=no_police,
            reason=RoutingReason.CONSENT_CHANGED,
            now=NOW,
        )
    async with transaction(db.sessions) as session:
        # Routed by an earlier transaction: staged, then dropped by the claim.
        await router.route_submitted(session, policy=POLICY, submitted=a, now=NOW)

    decisions = [
        (p["referral_id"], p["reason"], {r["agency"]: r["disclosure"] for r in p["recipients"]})
        for p in await outbox_payloads(db, "referral.routed")
    ]
    assert decisions == [
        (a.referral_id, "submitted", {"ngo-south": "support", "mvd-ctu": "full"}),
        (b.referral_id, "submitted", {"nrm-coordinator": "support", "mvd-ctu": "full"}),
        (a.referral_id, "consent_changed", {"mvd-ctu": "anonymous"}),
    ]
    assert await recipients(db) == {
        (a.referral_id, "ngo-south"): "support",
        (a.referral_id, "mvd-ctu"): "anonymous",
        (b.referral_id, "nrm-coordinator"): "support",
        (b.referral_id, "mvd-ctu"): "full",
    }


async def test_router_staged_decisions_go_with_a_rolled_back_transaction(db: Database) -> None:
    await create_all(db.engine, router_metadata)
    a = submission(victim())
    with pytest.raises(RuntimeError):
        async with transaction(db.sessions) as session:
            await router.route_submitted(session, policy=POLICY, submitted=a, now=NOW)
            raise RuntimeError("a later event of the batch failed")
    assert await recipients(db) == {}
    assert await outbox_payloads(db, "referral.routed") == []
    async with transaction(db.sessions) as session:
        assert await router.route_submitted(session, policy=POLICY, submitted=a, now=NOW)
    assert len(await outbox_payloads(db, "referral.routed")) == 1
    assert len(await recipients(db)) == 2


def routed(referral_id: str, reason: RoutingReason, **levels: Disclosure) -> ReferralRouted:
    return ReferralRouted(
        referral_id=referral_id,
        reference="NRM-2026-000042",
        decision_id=str(uuid.uuid4()),
        reason=reason,
        policy_version="sha256:test",
        facts=RoutingFacts(
            kind=ReferralKind.VICTIM_REFERRAL,
            submitted_by="labour-insp",
            region="KZ-79",
            urgency=Urgency.ROUTINE,
            exploitation=["sexual"],
        ),
        recipients=[
            RecipientDecision(
                agency=agency.replace("_", "-"),
                disclosure=level,
                rule="test",
                deadline=datetime(2026, 11, 29, 12, 0, tzinfo=UTC) + timedelta(hours=24),
            )
            for agency, level in levels.items()
        ],
    )


async def test_notify_first_deliveries_written_once_and_before_later_changes(
    db: Database,
) -> None:
    await create_all(db.engine, notify_metadata)
    r1, erased, r2 = (str(uuid.uuid4()) for _ in range(3))
    async with transaction(db.sessions) as session:
        session.add(ErasedReferral(referral_id=erased))
    first = routed(
        r1, RoutingReason.SUBMITTED, ngo_south=Disclosure.SUPPORT, mvd_ctu=Disclosure.FULL
    )
    async with transaction(db.sessions) as session:
        await notify.apply_routed(session, routed=first)
        # Erased before its first decision arrived: nothing of it is kept.
        await notify.apply_routed(
            session, routed=routed(erased, RoutingReason.SUBMITTED, mvd_ctu=Disclosure.FULL)
        )
        await notify.apply_routed(
            session, routed=routed(r2, RoutingReason.SUBMITTED, gp=Disclosure.FULL)
        )
        # Reads the deliveries staged above and updates one.
        lowered = routed(r1, RoutingReason.CONSENT_CHANGED, mvd_ctu=Disclosure.ANONYMOUS)
        await notify.apply_routed(session, routed=lowered)
    async with transaction(db.sessions) as session:
        # The same agencies again as a first decision: they have their deliveries.
        again = routed(
            r1, RoutingReason.SUBMITTED, ngo_south=Disclosure.FULL, mvd_ctu=Disclosure.FULL
        )
        await notify.apply_routed(session, routed=again)

    async with db.sessions() as session:
        deliveries = {
            (d.referral_id, d.agency): (d.disclosure, d.decision_id)
            for d in await session.exec(select(Delivery))
        }
        changes = [
            (c.agency, c.kind, c.item["referral_id"], c.item["disclosure"])
            for c in await session.exec(select(DeliveryChange).order_by(col(DeliveryChange.id)))
        ]
    assert deliveries == {
        (r1, "ngo-south"): ("support", first.decision_id),
        (r1, "mvd-ctu"): ("anonymous", lowered.decision_id),
        (r2, "gp"): ("full", deliveries[(r2, "gp")][1]),
    }
    assert changes == [
        ("ngo-south", "delivery.created", r1, "support"),
        ("mvd-ctu", "delivery.created", r1, "full"),
        ("gp", "delivery.created", r2, "full"),
        ("mvd-ctu", "delivery.updated", r1, "anonymous"),
    ]
    notified = [
        (p["referral_id"], p["agency"]) for p in await outbox_payloads(db, "delivery.notified")
    ]
    assert notified == [(r1, "ngo-south"), (r1, "mvd-ctu"), (r2, "gp")]


def intake_routed(referral_id: str, disclosure: Disclosure, rule: str) -> ReferralRouted:
    return ReferralRouted(
        referral_id=referral_id,
        reference="NRM-2026-000042",
        decision_id=str(uuid.uuid4()),
        reason=RoutingReason.SUBMITTED,
        policy_version="v1",
        facts=facts_of(victim(), "labour-insp"),
        recipients=[
            RecipientDecision(
                agency="ngo-south",
                disclosure=disclosure,
                rule=rule,
                deadline=None,
                requires_consent=["services"],
            )
        ],
    )


def case_event(referral_id: str, delivery_id: str) -> DeliveryNotified:
    return DeliveryNotified(
        delivery_id=delivery_id, referral_id=referral_id, agency="ngo-south", channel="inbox"
    )


async def test_intake_batch_ends_as_its_events_one_transaction_each(db: Database) -> None:
    """A case event before the decision, statuses up, an equal rank (the later wins), a lower
    one (the status stays, the delivery moves), a second decision (its terms win): applied in
    one transaction (staged) and one transaction per event, both end the same; an erased
    referral's events leave nothing."""
    await create_all(db.engine, intake_metadata)
    batched, one_by_one, gone = (str(uuid.uuid4()) for _ in range(3))
    async with transaction(db.sessions) as session:
        session.add(erased_referral(gone))

    def steps(referral_id: str) -> list[Any]:
        return [
            lambda s: intake.apply_case_event(
                s, event=case_event(referral_id, "d1"), status="notified"
            ),
            lambda s: intake.apply_routed(
                s, routed=intake_routed(referral_id, Disclosure.SUPPORT, "first")
            ),
            lambda s: intake.apply_case_event(
                s, event=case_event(referral_id, "d1"), status="acknowledged"
            ),
            lambda s: intake.apply_case_event(
                s, event=case_event(referral_id, "d1"), status="declined"
            ),
            lambda s: intake.apply_case_event(
                s, event=case_event(referral_id, "d2"), status="accepted"
            ),
            lambda s: intake.apply_case_event(
                s, event=case_event(referral_id, "d3"), status="notified"
            ),
            lambda s: intake.apply_routed(
                s, routed=intake_routed(referral_id, Disclosure.ANONYMOUS, "second")
            ),
        ]

    async with transaction(db.sessions, background=True) as session:
        for step in steps(batched) + steps(gone):
            await step(session)
    for step in steps(one_by_one):
        async with transaction(db.sessions, background=True) as session:
            await step(session)

    async with db.sessions() as session:
        rows = {
            r.referral_id: (r.agency, r.status, r.delivery_id, r.disclosure, r.rule)
            for r in await session.exec(select(IntakeRecipient))
        }
    assert rows == {
        batched: ("ngo-south", "accepted", "d3", "anonymous", "second"),
        one_by_one: ("ngo-south", "accepted", "d3", "anonymous", "second"),
    }


async def test_insights_batch_with_its_prefetch_ends_as_its_events_one_transaction_each(
    db: Database,
) -> None:
    """Insights loads a batch's rows first (`prefetch`) and then asks nothing per event: a
    referral submitted, routed and acknowledged, and one erased between its acknowledgement and
    a late acceptance and withdrawal, end as when each event has a transaction of its own. The
    erased one counts under a new id, and nothing is left or re-made under its old one."""
    await create_all(db.engine, insights_metadata)
    acknowledged = datetime(2026, 11, 3, 9, tzinfo=UTC)

    def steps(live: str, gone: str) -> list[Any]:
        def ack(rid: str) -> ReferralAcknowledged:
            return ReferralAcknowledged(
                delivery_id=f"d-{rid}",
                referral_id=rid,
                agency="ngo-south",
                actor="x",
                at=acknowledged,
            )

        late = ReferralAccepted(
            delivery_id=f"d-{gone}", referral_id=gone, agency="ngo-south", actor="x", at=NOW
        )
        return [
            *(
                step
                for rid in (live, gone)
                for step in (
                    lambda s, rid=rid: insights.apply_submitted(s, submitted=submitted_as(rid)),
                    lambda s, rid=rid: insights.apply_routed(
                        s, routed=intake_routed(rid, Disclosure.SUPPORT, "first"), at=NOW
                    ),
                    lambda s, rid=rid: insights.apply_action(s, action=ack(rid)),
                )
            ),
            lambda s: insights.apply_erased(s, referral_id=gone),
            lambda s: insights.apply_action(s, action=late),
            lambda s: insights.apply_withdrawn(
                s,
                withdrawn=ReferralWithdrawn(
                    referral_id=gone, reference="NRM-2026-000042", withdrawn_by="gp"
                ),
            ),
        ]

    batched, batched_gone, single, single_gone = (str(uuid.uuid4()) for _ in range(4))
    async with transaction(db.sessions, background=True) as session:
        await insights.prefetch(session, referral_ids=[batched, batched_gone])
        for step in steps(batched, batched_gone):
            await step(session)
    for step in steps(single, single_gone):
        async with transaction(db.sessions, background=True) as session:
            await step(session)

    async with db.sessions() as session:
        facts = {r.referral_id: r for r in await session.exec(select(ReferralFact))}
        deliveries = {r.referral_id: r for r in await session.exec(select(DeliveryFact))}
    for live in (batched, single):
        assert (facts[live].month, facts[live].region) == ("2026-11", "KZ-79")
        row = deliveries[live]
        assert (row.agency, row.acknowledged_at, row.accepted_at) == (
            "ngo-south",
            acknowledged,
            None,
        )
    assert batched_gone not in facts and single_gone not in facts
    assert batched_gone not in deliveries and single_gone not in deliveries
    moved = [r for rid, r in deliveries.items() if rid not in (batched, single)]
    # Two erased referrals, each under a new id: acknowledged (the time moved within its
    # month), the acceptance after the erasure dropped.
    assert len(moved) == 2 and len(facts) == 4
    assert [(r.acknowledged_at is not None, r.accepted_at) for r in moved] == [(True, None)] * 2
    # ...and the withdrawal after it too.
    assert [f.withdrawn for rid, f in facts.items() if rid not in (batched, single)] == [False] * 2
