"""Routing decisions. Plain functions; the caller owns the transaction.

Each decision is stored (so consent changes and escalations can be re-decided against what was
decided before) and announced as one `referral.routed` event through the outbox.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from uuid6 import uuid7

from contracts.cloudevents import CloudEvent
from contracts.events import (
    DeliveryRef,
    IdentificationDecided,
    IdentificationOverdue,
    IdentificationTerms,
    RecipientDecision,
    ReferralConsentChanged,
    ReferralRiskChanged,
    ReferralRouted,
    ReferralSubmitted,
    ReferralWithdrawn,
    RoutingReason,
)
from contracts.referrals import RoutingFacts
from contracts.vocabulary import Disclosure, RiskLevel, Urgency
from services.common.access import admin_changed
from services.common.db import insert_ignore, staged, write_staged
from services.common.models import utcnow
from services.common.outbox import forget_delivered, outbox_row, write_rows
from services.router.models import Escalation, Recipient, RoutedReferral
from services.router.policy import LEVEL_RANK, ConsentScope, Pick, Policy

SERVICE = "router"


def _decision(pick: Pick) -> RecipientDecision:
    return RecipientDecision(
        agency=pick.agency,
        disclosure=pick.disclosure,
        rule=pick.rule,
        deadline=pick.deadline,
        requires_consent=list(pick.requires_consent),
    )


_ROUTED: Table = RoutedReferral.__table__  # type: ignore[attr-defined]
_RECIPIENTS: Table = Recipient.__table__  # type: ignore[attr-defined]
_INSERT_RECIPIENTS = _RECIPIENTS.insert()


@cache
def _claim(dialect: str) -> Any:
    """INSERT routed_referral rows ON CONFLICT DO NOTHING, RETURNING the ids that went in."""
    return insert_ignore(dialect, _ROUTED).returning(_ROUTED.c.referral_id)


@dataclass
class _Decisions:
    """What this transaction's routing decisions write, staged (`db.staged`) and written
    together before it commits: the new referrals (claimed with one INSERT ... ON CONFLICT DO
    NOTHING RETURNING, so one routed before, by an earlier transaction or another instance, is
    not routed again), their recipients (one INSERT), and every `referral.routed` outbox row in
    the order the decisions were taken (one INSERT; a new referral's only if claimed)."""

    referrals: dict[str, dict[str, Any]] = field(default_factory=dict)
    recipients: list[dict[str, Any]] = field(default_factory=list)
    # (the new referral whose claim the row depends on, or None; the outbox row)
    outbox: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)

    def write(self, session: Session) -> None:
        conn = session.connection()
        claimed: set[str] = set()
        if self.referrals:
            # A list of parameters: SQLAlchemy's "insertmanyvalues" sends multi-row statements
            # (paged under the driver's bound-variable limit) from the cached compiled one;
            # `.values(rows)` compiled a new statement per batch (~half of the claim's cost).
            result = conn.execute(_claim(conn.dialect.name), list(self.referrals.values()))
            claimed.update(result.scalars())
            recipients = [r for r in self.recipients if r["referral_id"] in claimed]
            if recipients:
                conn.execute(_INSERT_RECIPIENTS, recipients)
        write_rows(
            session, [row for needs, row in self.outbox if needs is None or needs in claimed]
        )
        self.referrals, self.recipients, self.outbox = {}, [], []


def _announce(
    session: AsyncSession,
    *,
    referral_id: str,
    reference: str,
    submitted_by: str,
    facts: RoutingFacts,
    reason: RoutingReason,
    policy: Policy,
    picks: list[Pick],
    cause: CloudEvent | None,
    escalated_delivery_id: str | None = None,
    removed: list[str] | None = None,
    identification: IdentificationTerms | None = None,
    needs_claim: bool = False,
) -> str:
    """Stage the `referral.routed` event for a decision; returns its decision id.
    `needs_claim`: a new referral's, published only if its routed_referral row goes in."""
    decision_id = str(uuid7())
    payload = ReferralRouted(
        referral_id=referral_id,
        reference=reference,
        decision_id=decision_id,
        reason=reason,
        policy_version=policy.version,
        facts=facts,
        recipients=[_decision(p) for p in picks],
        escalated_delivery_id=escalated_delivery_id,
        removed=removed or [],
        identification=identification,
    )
    event = CloudEvent.new(
        source=SERVICE,
        payload=payload,
        subject=referral_id,
        agency=submitted_by,
    )  # its traceparent: the handled event's trace (stamped by the outbox row, made now)
    staged(session, _Decisions).outbox.append(
        (referral_id if needs_claim else None, outbox_row(event))
    )
    return decision_id


async def route_submitted(
    session: AsyncSession,
    *,
    policy: Policy,
    submitted: ReferralSubmitted,
    cause: CloudEvent | None = None,
    now: datetime | None = None,
    unavailable: Collection[str] = frozenset(),
) -> str | None:
    """Decide the recipients of a new referral (`unavailable`: disabled agencies, left out);
    returns the decision id, or None if this transaction routed the referral already.

    The router's hot path: nothing is read and nothing written here. The decision is staged
    (`_Decisions`) and written with the transaction's other new referrals in three statements
    before it commits; only if the referral was not routed before (by an earlier transaction,
    or another instance) do its recipients and `referral.routed` go in.
    """
    decisions = staged(session, _Decisions)
    if submitted.referral_id in decisions.referrals:
        return None
    facts = submitted.facts
    stamp = utcnow()
    decisions.referrals[submitted.referral_id] = {
        "referral_id": submitted.referral_id,
        "reference": submitted.reference,
        "submitted_by": facts.submitted_by,
        "facts": facts.model_dump(mode="json"),
        "withdrawn": False,
        "policy_version": policy.version,
        "updated_at": stamp,
        "erased_at": None,
    }
    picks = policy.evaluate(facts, now=now or datetime.now(UTC), unavailable=unavailable).recipients
    decisions.recipients += [
        {
            "referral_id": submitted.referral_id,
            "agency": p.agency,
            "disclosure": p.disclosure.value,
            "rule": p.rule,
            "requires_consent": list(p.requires_consent),
            "updated_at": stamp,
        }
        for p in picks
    ]
    return _announce(
        session,
        referral_id=submitted.referral_id,
        reference=submitted.reference,
        submitted_by=facts.submitted_by,
        facts=facts,
        reason=RoutingReason.SUBMITTED,
        policy=policy,
        picks=picks,
        cause=cause,
        identification=policy.identification_terms(facts, submitted_at=submitted.submitted_at),
        needs_claim=True,
    )


async def _redecide(
    session: AsyncSession,
    *,
    referral: RoutedReferral,
    reason: RoutingReason,
    policy: Policy,
    picks: list[Pick],
    cause: CloudEvent | None,
    escalated_delivery_id: str | None = None,
    removed: list[str] | None = None,
) -> str:
    """A later decision on a known referral: update its recipients and announce the change."""
    for pick in picks:
        row = await session.get(Recipient, (referral.referral_id, pick.agency))
        if row is None:
            row = Recipient(
                referral_id=referral.referral_id,
                agency=pick.agency,
                disclosure=pick.disclosure.value,
                rule=pick.rule,
            )
        row.disclosure = pick.disclosure.value
        row.rule = pick.rule
        row.requires_consent = list(pick.requires_consent)
        row.updated_at = utcnow()
        session.add(row)
    return _announce(
        session,
        referral_id=referral.referral_id,
        reference=referral.reference,
        submitted_by=referral.submitted_by,
        facts=RoutingFacts.model_validate(referral.facts),
        reason=reason,
        policy=policy,
        picks=picks,
        cause=cause,
        escalated_delivery_id=escalated_delivery_id,
        removed=removed or [],
    )


async def _recipients(session: AsyncSession, referral_id: str) -> dict[str, Recipient]:
    rows = await session.exec(select(Recipient).where(Recipient.referral_id == referral_id))
    return {row.agency: row for row in rows}


async def route_consent_changed(
    session: AsyncSession,
    *,
    policy: Policy,
    changed: ReferralConsentChanged,
    cause: CloudEvent | None = None,
    now: datetime | None = None,
    unavailable: Collection[str] = frozenset(),
) -> str | None:
    """Re-decide disclosure under the new consent (see `route_facts_changed`)."""
    return await route_facts_changed(
        session,
        policy=policy,
        referral_id=changed.referral_id,
        reference=changed.reference,
        facts=changed.facts,
        reason=RoutingReason.CONSENT_CHANGED,
        cause=cause,
        now=now,
        unavailable=unavailable,
    )


async def route_facts_changed(
    session: AsyncSession,
    *,
    policy: Policy,
    referral_id: str,
    reference: str,
    facts: RoutingFacts,
    reason: RoutingReason,
    cause: CloudEvent | None = None,
    now: datetime | None = None,
    unavailable: Collection[str] = frozenset(),
) -> str | None:
    """Re-decide every recipient at once on changed facts (consent, risk, implicated).

    Existing recipients keep their place (a delivery is never taken back) but get the level the
    policy now gives them, or `anonymous` if no rule would choose them any more; recipients the
    facts now bring in are added. The one exception: an agency now named implicated is removed
    (`removed: true`), so it loses the delivery and every read. Only changes are announced;
    None if there are none.
    """
    await write_staged(session)  # decisions staged earlier in the transaction
    referral = await session.get(RoutedReferral, referral_id)
    if referral is None:  # changed before the router saw the submission: route now
        submitted = ReferralSubmitted(
            referral_id=referral_id,
            reference=reference,
            submitted_at=now or datetime.now(UTC),
            facts=facts,
        )
        return await route_submitted(
            session,
            policy=policy,
            submitted=submitted,
            cause=cause,
            now=now,
            unavailable=unavailable,
        )
    if referral.withdrawn or referral.erased_at:
        return None
    # A raised urgency (high risk) shortens every open deadline: all recipients are re-announced.
    hurried = referral.facts.get("urgency") != facts.urgency.value
    referral.facts = facts.model_dump(mode="json")
    referral.policy_version = policy.version
    referral.updated_at = utcnow()
    session.add(referral)
    evaluation = policy.evaluate(facts, now=now or datetime.now(UTC), unavailable=unavailable)
    wanted = {p.agency: p for p in evaluation.recipients}
    current = await _recipients(session, referral_id)
    changes: list[Pick] = []
    removed: list[str] = []
    for agency, row in current.items():
        if agency in facts.implicated:
            removed.append(agency)
            await session.delete(row)
            continue
        pick = wanted.pop(agency, None) or Pick(agency, Disclosure.ANONYMOUS, row.rule, None, ())
        if hurried or (pick.disclosure.value, list(pick.requires_consent)) != (
            row.disclosure,
            row.requires_consent,
        ):
            changes.append(pick)
    changes += wanted.values()  # newcomers
    if not changes and not removed:
        return None
    return await _redecide(
        session,
        referral=referral,
        reason=reason,
        policy=policy,
        picks=changes,
        cause=cause,
        removed=removed,
    )


async def route_risk_changed(
    session: AsyncSession,
    *,
    policy: Policy,
    changed: ReferralRiskChanged,
    cause: CloudEvent | None = None,
    now: datetime | None = None,
    unavailable: Collection[str] = frozenset(),
) -> str | None:
    """Apply a new risk level to the facts last routed on (high: urgency `immediate`) and
    re-decide. The event follows the submission on the same partition, so the referral is known;
    if not, there is nothing to re-decide."""
    await write_staged(session)  # decisions staged earlier in the transaction
    referral = await session.get(RoutedReferral, changed.referral_id)
    if referral is None or referral.erased_at:
        return None
    update: dict[str, object] = {"risk_level": changed.risk_level}
    if changed.risk_level == RiskLevel.HIGH:
        update["urgency"] = Urgency.IMMEDIATE
    facts = RoutingFacts.model_validate(referral.facts).model_copy(update=update)
    return await route_facts_changed(
        session,
        policy=policy,
        referral_id=changed.referral_id,
        reference=changed.reference,
        facts=facts,
        reason=RoutingReason.RISK_CHANGED,
        cause=cause,
        now=now,
        unavailable=unavailable,
    )


async def route_withdrawn(
    session: AsyncSession,
    *,
    policy: Policy,
    withdrawn: ReferralWithdrawn,
    cause: CloudEvent | None = None,
) -> str | None:
    """A withdrawn referral: every recipient drops to `anonymous`, with nothing left to do."""
    await write_staged(session)  # decisions staged earlier in the transaction
    referral = await session.get(RoutedReferral, withdrawn.referral_id)
    if referral is None or referral.withdrawn or referral.erased_at:
        return None
    referral.withdrawn = True
    referral.updated_at = utcnow()
    session.add(referral)
    current = await _recipients(session, withdrawn.referral_id)
    picks = [
        Pick(agency, Disclosure.ANONYMOUS, row.rule, None, ()) for agency, row in current.items()
    ]
    return await _redecide(
        session,
        referral=referral,
        reason=RoutingReason.WITHDRAWN,
        policy=policy,
        picks=picks,
        cause=cause,
    )


def _never_lower(pick: Pick, known: Recipient | None) -> Pick:
    """An escalation's pick for an agency that is already a recipient at a higher level keeps
    that level (and the consent it rests on): escalating must not lower it."""
    if known is None or LEVEL_RANK[Disclosure(known.disclosure)] <= LEVEL_RANK[pick.disclosure]:
        return pick
    return Pick(
        pick.agency,
        Disclosure(known.disclosure),
        pick.rule,
        pick.deadline,
        tuple(cast(list[ConsentScope], known.requires_consent)),
        pick.basis,
    )


async def escalate(
    session: AsyncSession,
    *,
    policy: Policy,
    delivery: DeliveryRef,
    cause_type: str,
    cause: CloudEvent | None = None,
    now: datetime | None = None,
    unavailable: Collection[str] = frozenset(),
) -> str | None:
    """Escalate a declined or overdue delivery (once per delivery, whatever the cause), at the
    level the victim's consent allows, never to an implicated agency."""
    await write_staged(session)  # decisions staged earlier in the transaction
    dialect = session.get_bind().dialect.name
    claimed = await session.exec(
        insert_ignore(dialect, Escalation).values(
            delivery_id=delivery.delivery_id,
            referral_id=delivery.referral_id,
            agency=delivery.agency,
            cause=cause_type,
            outcome="pending",
            created_at=utcnow(),
        )
    )
    if claimed.rowcount == 0:
        return None  # this delivery was escalated (or considered) before
    row = await session.get(Escalation, delivery.delivery_id)
    assert row is not None
    referral = await session.get(RoutedReferral, delivery.referral_id)
    target = policy.file.escalation.to
    if referral is None:
        row.outcome = "not escalated: referral unknown to the router"
    elif referral.erased_at:
        row.outcome = "not escalated: referral erased"
    elif referral.withdrawn:
        row.outcome = "not escalated: referral withdrawn"
    elif delivery.agency == target:
        row.outcome = f"not escalated: {target} is the escalation target itself"
    elif referral.submitted_by == target:
        row.outcome = f"not escalated: {target} submitted the referral"
    else:  # the level is what consent allows; implicated agencies are never chosen
        facts = RoutingFacts.model_validate(referral.facts)
        found = policy.escalation(
            facts, now=now or datetime.now(UTC), skip=[delivery.agency], unavailable=unavailable
        )
        if found is None:
            row.outcome = "not escalated: every escalation recipient is implicated or excluded"
            session.add(row)
            return None
        target = found.agency
        pick = _never_lower(found, await session.get(Recipient, (referral.referral_id, target)))
        row.decision_id = await _redecide(
            session,
            referral=referral,
            reason=RoutingReason.ESCALATION,
            policy=policy,
            picks=[pick],
            cause=cause,
            escalated_delivery_id=delivery.delivery_id,
        )
        row.outcome = f"escalated to {target} ({pick.disclosure.value})"
    session.add(row)
    return row.decision_id


async def policy_reloaded(
    session: AsyncSession, *, policy: Policy, previous: Policy, actor: str
) -> None:
    """Announce a reload on the access topic, so the audit log shows which policy ruled when."""
    await admin_changed(
        session,
        source=SERVICE,
        action="policy.reloaded",
        target_type="routing_policy",
        target_id=policy.version,
        actor=actor,
        details={"previous_version": previous.version, "source": policy.source},
    )


# Identification


async def identification_decided(
    session: AsyncSession,
    *,
    policy: Policy,
    decided: IdentificationDecided,
    cause: CloudEvent | None = None,
    now: datetime | None = None,
    unavailable: Collection[str] = frozenset(),
) -> str | None:
    """Keep the new victim status in the facts routed on, and bring in whoever the policy's
    follow-up rules now choose (an agency already a recipient at that level or above is left
    as it is). None when nobody new is chosen."""
    await write_staged(session)  # decisions staged earlier in the transaction
    referral = await session.get(RoutedReferral, decided.referral_id)
    if referral is None or referral.withdrawn or referral.erased_at:
        return None
    facts = RoutingFacts.model_validate(
        {**referral.facts, "victim_status": decided.facts.victim_status}
    )
    referral.facts = facts.model_dump(mode="json")
    referral.updated_at = utcnow()
    session.add(referral)
    evaluation = policy.follow_up(facts, now=now or datetime.now(UTC), unavailable=unavailable)
    current = await _recipients(session, decided.referral_id)
    picks = [
        p
        for p in evaluation.recipients
        if p.agency not in current
        or LEVEL_RANK[p.disclosure] > LEVEL_RANK[Disclosure(current[p.agency].disclosure)]
    ]
    if not picks:
        return None
    return await _redecide(
        session,
        referral=referral,
        reason=RoutingReason.FOLLOW_UP,
        policy=policy,
        picks=picks,
        cause=cause,
    )


OVERDUE_CAUSE = "identification_overdue"


async def identification_overdue(
    session: AsyncSession,
    *,
    policy: Policy,
    overdue: IdentificationOverdue,
    cause: CloudEvent | None = None,
    now: datetime | None = None,
    unavailable: Collection[str] = frozenset(),
) -> str | None:
    """Escalate an overdue reasonable-grounds decision, once per referral (the escalation
    table's key, `identification:<referral id>`, claimed first, as for deliveries), at the level
    consent allows."""
    await write_staged(session)  # decisions staged earlier in the transaction
    dialect = session.get_bind().dialect.name
    key = f"identification:{overdue.referral_id}"
    claimed = await session.exec(
        insert_ignore(dialect, Escalation).values(
            delivery_id=key,
            referral_id=overdue.referral_id,
            agency=overdue.authority,
            cause=OVERDUE_CAUSE,
            outcome="pending",
            created_at=utcnow(),
        )
    )
    if claimed.rowcount == 0:
        return None
    row = await session.get(Escalation, key)
    assert row is not None
    referral = await session.get(RoutedReferral, overdue.referral_id)
    if referral is None:
        row.outcome = "not escalated: referral unknown to the router"
    elif referral.erased_at:
        row.outcome = "not escalated: referral erased"
    elif referral.withdrawn:
        row.outcome = "not escalated: referral withdrawn"
    else:
        facts = RoutingFacts.model_validate(referral.facts)
        pick = policy.identification_overdue(
            facts, now=now or datetime.now(UTC), unavailable=unavailable
        )
        if pick is None:
            row.outcome = "not escalated: no identification section or nobody left to tell"
        else:
            known = await session.get(Recipient, (referral.referral_id, pick.agency))
            pick = _never_lower(pick, known)
            row.decision_id = await _redecide(
                session,
                referral=referral,
                reason=RoutingReason.ESCALATION,
                policy=policy,
                picks=[pick],
                cause=cause,
            )
            row.outcome = f"escalated to {pick.agency} ({pick.disclosure.value})"
    session.add(row)
    return row.decision_id


# Erasure


async def apply_erased(
    session: AsyncSession, *, referral_id: str, now: datetime | None = None
) -> bool:
    """Drop the victim's profile from what the router keeps of a referral (`referral.erased`):
    the facts it routed on (age group, needs, consent, region, exploitation, countries…) are
    emptied and the delivered outbox rows of the referral (`referral.routed` carries the facts)
    deleted. What explains its decisions stays: recipients with their levels, rules and the
    consent scopes a level rests on, escalations and their outcomes, the policy version, times.
    A referral the router never saw is recorded erased, so a late submission is not routed.
    False when it was erased before (idempotent)."""
    await write_staged(session)  # decisions staged earlier in the transaction
    now = now or utcnow()
    await forget_delivered(session, key=referral_id)
    referral = await session.get(RoutedReferral, referral_id)
    if referral is None:
        await session.exec(
            insert_ignore(session.get_bind().dialect.name, RoutedReferral).values(
                referral_id=referral_id,
                reference="",
                submitted_by="",
                facts={},
                withdrawn=False,
                policy_version="",
                updated_at=now,
                erased_at=now,
            )
        )
        return True
    if referral.erased_at is not None:
        return False
    referral.facts = {}
    referral.erased_at = referral.updated_at = now
    session.add(referral)
    return True
