"""Deliveries and their lifecycle. Plain functions; the caller owns the transaction.

A delivery is one recipient's copy of a referral. It is created from `referral.routed` (one per
referral and agency, whatever the redeliveries), changed by staff actions and the deadline
clock, and every change is appended to `delivery_change` (the live stream) and, where the agency
asked for it, queued for webhook and e-mail dispatch.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, and_, delete, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from uuid6 import uuid7

from contracts.cloudevents import CloudEvent
from contracts.events import (
    DeliveryAction,
    DeliveryNotified,
    Payload,
    RecipientDecision,
    ReferralAccepted,
    ReferralAcknowledged,
    ReferralCompleted,
    ReferralDeadlineMissed,
    ReferralDeclined,
    ReferralErasureAcknowledged,
    ReferralRouted,
    RoutingReason,
)
from contracts.vocabulary import DeliveryStatus
from services.common.db import CommitSignal, insert_ignore, insert_many, staged, write_staged
from services.common.errors import Conflict, NotFound, UnprocessableContent
from services.common.models import utcnow
from services.common.outbox import (
    add_event,
    add_events,
    forget_delivered,
    outbox_row,
    write_rows,
)
from services.common.tracing import current_traceparent
from services.notify import repository
from services.notify.channels import CHANNELS_READ
from services.notify.models import (
    Delivery,
    DeliveryChange,
    Dispatch,
    EmailRecipients,
    ErasedReferral,
    Recusal,
    Webhook,
)
from services.notify.repository import OPEN

SERVICE = "notify"
CHANGED = CommitSignal("delivery-change")  # wakes this process's live streams on commit
QUEUED = CommitSignal("dispatch")  # wakes this process's dispatcher on commit

ACTIVE = (*OPEN, DeliveryStatus.ACKNOWLEDGED, DeliveryStatus.ACCEPTED)

# Staff actions: the states each may start from, the state it leads to, and its case event.
TRANSITIONS: dict[str, tuple[tuple[DeliveryStatus, ...], DeliveryStatus, type[DeliveryAction]]] = {
    "acknowledge": (OPEN, DeliveryStatus.ACKNOWLEDGED, ReferralAcknowledged),
    "accept": ((DeliveryStatus.ACKNOWLEDGED,), DeliveryStatus.ACCEPTED, ReferralAccepted),
    "decline": ((DeliveryStatus.ACKNOWLEDGED,), DeliveryStatus.DECLINED, ReferralDeclined),
    "complete": ((DeliveryStatus.ACCEPTED,), DeliveryStatus.COMPLETED, ReferralCompleted),
}


class _Columns:
    """Subscript access to a row's attributes, so `item` reads rows and dicts alike."""

    def __init__(self, row: Delivery) -> None:
        self._row = row

    def __getitem__(self, name: str) -> Any:
        return getattr(self._row, name)


def item(d: Delivery | Mapping[str, Any]) -> dict[str, Any]:
    """A delivery (a row or a plain dict of its columns) as the inbox, the stream, webhooks and
    e-mail show it: no victim identity."""
    v: Any = d if isinstance(d, Mapping) else _Columns(d)
    deadline = v["deadline"]
    erased, acknowledged = v["erased_at"], v["erasure_acknowledged_at"]
    return {
        "delivery_id": v["id"],
        "referral_id": v["referral_id"],
        "reference": v["reference"],
        "agency": v["agency"],
        "status": v["status"],
        "disclosure": v["disclosure"],
        "deadline": deadline.isoformat() if deadline else None,
        "rule": v["rule"],
        "urgency": v["urgency"],
        "exploitation": list(v["exploitation"]),
        "region": v["region"],
        "kind": v["kind"],
        "minor": v["minor"],
        "decline_reason": v["decline_reason"],
        "updated_at": v["updated_at"].isoformat(),
        "erased_at": erased.isoformat() if erased else None,
        "erasure_acknowledged_at": acknowledged.isoformat() if acknowledged else None,
    }


def erasure_notice(d: Delivery) -> dict[str, Any]:
    """What the stream and webhooks carry about an erased delivery: the reference and that it
    was erased (and when its notice was acknowledged), nothing else."""
    return {
        "delivery_id": d.id,
        "referral_id": d.referral_id,
        "reference": d.reference,
        "agency": d.agency,
        "status": d.status,
        "erased_at": d.erased_at.isoformat() if d.erased_at else None,
        "erasure_acknowledged_at": (
            d.erasure_acknowledged_at.isoformat() if d.erasure_acknowledged_at else None
        ),
    }


def delivery_event(payload: Payload, d: Delivery) -> CloudEvent:
    """An event about a delivery, keyed by its referral (ordering is per referral)."""
    return CloudEvent.new(source=SERVICE, payload=payload, subject=d.referral_id, agency=d.agency)


@dataclass(frozen=True)
class Channels:
    """Which of some agencies have an enabled webhook, and their e-mail settings."""

    webhooks: frozenset[str]
    email: dict[str, EmailRecipients]

    @classmethod
    async def of(cls, session: AsyncSession, agencies: Sequence[str]) -> "Channels":
        # Read once per transaction and agency: a consumer batch routes many referrals to the
        # same few agencies. Dropped when the transaction ends, or changes an agency's channels
        # (`channels.channels_changed`).
        known: dict[str, tuple[bool, EmailRecipients | None]] = session.info.setdefault(
            CHANNELS_READ, {}
        )
        missing = [a for a in dict.fromkeys(agencies) if a not in known]
        if missing:
            hooks = set(
                await session.exec(
                    select(Webhook.agency).where(
                        col(Webhook.agency).in_(missing), col(Webhook.enabled)
                    )
                )
            )
            mail = await session.exec(
                select(EmailRecipients).where(col(EmailRecipients.agency).in_(missing))
            )
            emails = {m.agency: m for m in mail if m.addresses}
            for agency in missing:
                known[agency] = (agency in hooks, emails.get(agency))
        found = [(a, *known[a]) for a in agencies]
        return cls(
            frozenset(a for a, hook, _ in found if hook),
            {a: email for a, _, email in found if email is not None},
        )


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_channels(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(CHANNELS_READ, None)


def _fanout(
    view: dict[str, Any], *, kind: str, now: datetime, channels: Channels
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The change-feed row for a delivery's change, and the dispatches it calls for."""
    agency = view["agency"]
    change = {
        "agency": agency,
        "delivery_id": view["delivery_id"],
        "kind": kind,
        "item": view,
        "created_at": now,
    }
    common = {
        "agency": agency,
        "delivery_id": view["delivery_id"],
        "kind": kind,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
        "created_at": now,
        "done_at": None,
    }
    dispatches = []
    if agency in channels.webhooks:
        dispatches.append(
            {
                **common,
                "id": f"msg_{uuid7().hex}",
                "channel": "webhook",
                "payload": {"type": kind, "timestamp": now.isoformat(), "data": view},
            }
        )
    email = channels.email.get(agency)
    if kind in EMAILED and email is not None:
        dispatches.append(
            {
                **common,
                "id": f"mail_{uuid7().hex}",
                "channel": "email",
                "payload": {"type": kind, "data": view, "language": email.language},
            }
        )
    return change, dispatches


async def _changed(
    session: AsyncSession,
    d: Delivery,
    *,
    kind: str,
    now: datetime,
    channels: Channels | None = None,
) -> None:
    """Record a change for the live stream and queue it for the agency's webhook and e-mail."""
    d.updated_at = now
    session.add(d)
    channels = channels or await Channels.of(session, [d.agency])
    view = erasure_notice(d) if d.erased_at else item(d)
    change, dispatches = _fanout(view, kind=kind, now=now, channels=channels)
    await _feed(session, [change], dispatches)


async def _feed(
    session: AsyncSession, changes: list[dict[str, Any]], dispatches: list[dict[str, Any]]
) -> None:
    await insert_many(session, DeliveryChange, changes)
    CHANGED.mark(session)
    if dispatches:
        traceparent = current_traceparent()
        for dispatch in dispatches:
            dispatch["traceparent"] = traceparent
        await insert_many(session, Dispatch, dispatches)
        QUEUED.mark(session)


# Only what staff must act on is e-mailed; every change goes to webhooks and the stream.
EMAILED = {"delivery.created", "delivery.escalated_to_you", "delivery.erased"}
ERASURE_KINDS = ("delivery.erased", "delivery.erasure_acknowledged")


def _new_delivery(
    routed: ReferralRouted,
    decision: RecipientDecision,
    *,
    kind: str,
    now: datetime,
    channels: Channels,
    traceparent: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], CloudEvent]:
    """A new delivery's row, its first change, the dispatches that change calls for, and its
    `delivery.notified` event (`traceparent`: the current one, when the caller has it at hand;
    else the outbox takes it). In the inbox from its commit on, so created `notified`: that is
    the first notification."""
    row: dict[str, Any] = {
        "id": str(uuid7()),
        "referral_id": routed.referral_id,
        "reference": routed.reference,
        "agency": decision.agency,
        "status": DeliveryStatus.NOTIFIED.value,
        "disclosure": decision.disclosure.value,
        "rule": decision.rule,
        "deadline": decision.deadline,
        "deadline_missed_at": None,
        "urgency": routed.facts.urgency.value,
        "region": routed.facts.region,
        "kind": routed.facts.kind.value,
        "exploitation": [e.value for e in routed.facts.exploitation],
        "minor": routed.facts.minor,
        "decision_id": routed.decision_id,
        "decline_reason": None,
        "created_at": now,
        "updated_at": now,
        "erased_at": None,
        "erasure_acknowledged_at": None,
    }
    change, sends = _fanout(item(row), kind=kind, now=now, channels=channels)
    notified = DeliveryNotified(
        delivery_id=row["id"],
        referral_id=routed.referral_id,
        agency=decision.agency,
        channel="inbox",
    )
    event = CloudEvent.new(
        source=SERVICE,
        payload=notified,
        subject=routed.referral_id,
        agency=decision.agency,
        traceparent=traceparent,
    )
    return row, change, sends, event


_DELIVERIES: Table = Delivery.__table__  # type: ignore[attr-defined]
_ERASED: Table = ErasedReferral.__table__  # type: ignore[attr-defined]
_INSERT_CHANGES = DeliveryChange.__table__.insert()  # type: ignore[attr-defined]
_INSERT_DISPATCHES = Dispatch.__table__.insert()  # type: ignore[attr-defined]
_ROWS_PER_STATEMENT = 500  # IN lists stay under SQLite's bound-variable limit


@cache
def _insert_deliveries(dialect: str) -> Any:
    """INSERT delivery rows ON CONFLICT DO NOTHING (one per referral and agency), RETURNING
    the ids that went in."""
    return insert_ignore(dialect, _DELIVERIES).returning(_DELIVERIES.c.id)


@dataclass
class _FirstDeliveries:
    """The deliveries of this transaction's first routing decisions (`referral.routed` for a
    submission, the hot path), staged (`db.staged`) and written together before it commits: one
    SELECT for the referrals erased meanwhile (their deliveries are dropped), one INSERT ... ON
    CONFLICT DO NOTHING for the deliveries (a referral's agency already has one: nothing new),
    then one INSERT each for the change feed, the dispatches and the `delivery.notified` events
    of the deliveries that went in, in the order they were staged."""

    deliveries: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (delivery id, row)

    def write(self, session: Session) -> None:
        if not self.deliveries:
            return
        conn = session.connection()
        deliveries, self.deliveries = self.deliveries, []
        changes, self.changes = self.changes, []
        dispatches, self.dispatches = self.dispatches, []
        outbox, self.outbox = self.outbox, []
        referrals = list(dict.fromkeys(d["referral_id"] for d in deliveries))
        erased: set[str] = set()
        for start in range(0, len(referrals), _ROWS_PER_STATEMENT):
            chunk = referrals[start : start + _ROWS_PER_STATEMENT]
            query = select(_ERASED.c.referral_id).where(_ERASED.c.referral_id.in_(chunk))
            erased.update(conn.execute(query).scalars())
        if erased:
            deliveries = [d for d in deliveries if d["referral_id"] not in erased]
        inserted: set[str] = set()
        if deliveries:
            # A list of parameters, as the router's claim: SQLAlchemy's "insertmanyvalues"
            # pages multi-row statements from the cached compiled one, where `.values(chunk)`
            # compiled a new statement per batch (8% of the embedded stack's loop at 100/s).
            claim = _insert_deliveries(conn.dialect.name)
            inserted.update(conn.execute(claim, deliveries).scalars())
        changes = [c for c in changes if c["delivery_id"] in inserted]
        if changes:
            conn.execute(_INSERT_CHANGES, changes)
            CHANGED.mark(session)
        dispatches = [d for d in dispatches if d["delivery_id"] in inserted]
        if dispatches:
            conn.execute(_INSERT_DISPATCHES, dispatches)
            QUEUED.mark(session)
        write_rows(session, [row for delivery_id, row in outbox if delivery_id in inserted])


async def _stage_first_decision(
    session: AsyncSession, *, routed: ReferralRouted, now: datetime
) -> list[str]:
    """Stage the deliveries of a referral's first routing decision (see `_FirstDeliveries`)."""
    channels = await Channels.of(session, [r.agency for r in routed.recipients])
    first = staged(session, _FirstDeliveries)
    traceparent = current_traceparent()  # the handled event's: its dispatches continue it
    ids: list[str] = []
    for decision in routed.recipients:
        row, change, sends, event = _new_delivery(
            routed,
            decision,
            kind="delivery.created",
            now=now,
            channels=channels,
            traceparent=traceparent,
        )
        first.deliveries.append(row)
        first.changes.append(change)
        for dispatch in sends:
            dispatch["traceparent"] = traceparent
        first.dispatches += sends
        first.outbox.append((row["id"], outbox_row(event)))
        ids.append(row["id"])
    return ids


async def apply_routed(
    session: AsyncSession, *, routed: ReferralRouted, now: datetime | None = None
) -> list[str]:
    """Create or update one delivery per recipient of a routing decision; returns their ids.

    A referral's first decision (reason `submitted`) only creates deliveries: they are staged
    and written with the transaction's other first decisions before it commits, unless the
    referral was erased meanwhile (or, never in practice, an agency has its delivery already).
    Later decisions read the referral's deliveries and update them."""
    now = now or utcnow()
    if (
        routed.reason == RoutingReason.SUBMITTED
        and not routed.removed
        and routed.escalated_delivery_id is None
    ):
        return await _stage_first_decision(session, routed=routed, now=now)
    await write_staged(session)  # first decisions staged earlier in the transaction
    touched: list[str] = []
    existing = {
        d.agency: d
        for d in await session.exec(
            select(Delivery).where(Delivery.referral_id == routed.referral_id)
        )
    }
    if any(d.erased_at for d in existing.values()) or (
        not existing and await session.get(ErasedReferral, routed.referral_id) is not None
    ):
        # A decision that crossed the erasure on another topic: nothing of it is kept.
        return touched
    for agency in routed.removed:
        # Named as implicated after it was sent the referral: the delivery disappears from its
        # inbox without a trace it could read (no change record, no webhook, no e-mail).
        gone = existing.pop(agency, None)
        if gone is not None:
            await session.exec(delete(Dispatch).where(col(Dispatch.delivery_id) == gone.id))
            await session.exec(
                delete(DeliveryChange).where(col(DeliveryChange.delivery_id) == gone.id)
            )
            await session.delete(gone)
    channels = await Channels.of(session, [r.agency for r in routed.recipients])
    fresh: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    dispatches: list[dict[str, Any]] = []
    events: list[CloudEvent] = []
    first_kind = (
        "delivery.escalated_to_you"
        if routed.reason == RoutingReason.ESCALATION
        else "delivery.created"
    )
    for decision in routed.recipients:
        d = existing.get(decision.agency)
        if d is None:
            if routed.reason == RoutingReason.WITHDRAWN:
                continue  # nothing to deliver about a referral that is already withdrawn
            row, change, sends, event = _new_delivery(
                routed, decision, kind=first_kind, now=now, channels=channels
            )
            fresh.append(row)
            changes.append(change)
            dispatches += sends
            events.append(event)
            touched.append(row["id"])
            continue
        else:
            d.disclosure = decision.disclosure.value
            d.rule = decision.rule
            d.decision_id = routed.decision_id
            d.urgency = routed.facts.urgency.value  # raised to immediate by a high risk
            kind = "delivery.updated"
            if routed.reason == RoutingReason.WITHDRAWN:
                d.status = DeliveryStatus.WITHDRAWN.value
                d.deadline = None
                kind = "delivery.withdrawn"
            elif routed.reason == RoutingReason.ESCALATION and d.status in (
                DeliveryStatus.DECLINED,
                DeliveryStatus.ESCALATED,
                DeliveryStatus.COMPLETED,
            ):
                # Escalated back to an agency that was done with it: it must act again.
                d.status = DeliveryStatus.NOTIFIED.value
                d.deadline = decision.deadline
                d.deadline_missed_at = None
                kind = "delivery.escalated_to_you"
            elif d.status in OPEN and decision.deadline is not None:
                d.deadline = min(d.deadline or decision.deadline, decision.deadline)
            await _changed(session, d, kind=kind, now=now, channels=channels)
            touched.append(d.id)
    if fresh:
        await insert_many(session, Delivery, fresh)
        await _feed(session, changes, dispatches)
        await add_events(session, events)
    if routed.reason == RoutingReason.ESCALATION and routed.escalated_delivery_id:
        escalated = await session.get(Delivery, routed.escalated_delivery_id)
        if escalated is not None and escalated.status != DeliveryStatus.ESCALATED:
            escalated.status = DeliveryStatus.ESCALATED.value
            await _changed(session, escalated, kind="delivery.escalated", now=now)
    return touched


# Identification and investigation: every recipient hears of them through its channels.


async def apply_progress(
    session: AsyncSession,
    *,
    referral_id: str,
    kind: str,
    detail: dict[str, Any],
    now: datetime | None = None,
) -> int:
    """Tell every agency holding a delivery of the referral (the live stream, webhooks) of an
    identification or investigation event: the delivery as the inbox shows it, plus `event`
    (the event's facts, never an identity or an investigation number); the change's kind is the
    event type. Returns how many."""
    now = now or utcnow()
    await write_staged(session)  # first decisions staged earlier in the transaction
    deliveries = list(
        await session.exec(
            select(Delivery).where(
                Delivery.referral_id == referral_id,
                col(Delivery.status).not_in(
                    [DeliveryStatus.WITHDRAWN.value, DeliveryStatus.ERASED.value]
                ),
            )
        )
    )
    if not deliveries:
        return 0
    channels = await Channels.of(session, [d.agency for d in deliveries])
    changes: list[dict[str, Any]] = []
    dispatches: list[dict[str, Any]] = []
    for d in deliveries:
        change, sends = _fanout({**item(d), "event": detail}, kind=kind, now=now, channels=channels)
        changes.append(change)
        dispatches += sends
    await _feed(session, changes, dispatches)
    return len(deliveries)


# Recusals: a person who stepped away from a referral sees none of its deliveries.


async def recuse(session: AsyncSession, *, referral_id: str, subject: str) -> None:
    """Record a recusal (idempotent: a redelivered event changes nothing)."""
    dialect = session.get_bind().dialect.name
    await session.exec(
        insert_ignore(dialect, Recusal).values(
            referral_id=referral_id, subject=subject, created_at=utcnow()
        )
    )


DONE = {
    "acknowledge": "acknowledged",
    "accept": "accepted",
    "decline": "declined",
    "complete": "completed",
}


async def act(
    session: AsyncSession,
    *,
    delivery_id: str,
    agency: str,
    action: str,
    actor: str,
    reason: str | None = None,
    now: datetime | None = None,
    person: str | None = None,
) -> Delivery:
    """A staff action on one of the agency's deliveries; 404 for anyone else's (and for a person
    recused from its referral), 409 if illegal."""
    now = now or utcnow()
    d = await repository.delivery(
        session, delivery_id=delivery_id, agency=agency, person=person, for_update=True
    )
    if d.status == DeliveryStatus.ERASED:
        if action != "acknowledge":
            raise Conflict(
                f"The referral was erased: a delivery that is erased cannot be {DONE[action]}; "
                "only its erasure notice can be acknowledged."
            )
        await acknowledge_erasure(session, d, actor=actor, now=now)
        return d
    allowed_from, to, event_type = TRANSITIONS[action]
    if d.status not in allowed_from:
        raise Conflict(
            f"A delivery that is {d.status} cannot be {DONE[action]}; "
            f"{action} needs {' or '.join(allowed_from)}."
        )
    if event_type is ReferralDeclined:
        if not reason or not reason.strip():
            raise UnprocessableContent(
                "A decline needs a reason.",
                errors=[{"path": "reason", "type": "missing", "message": "Field required"}],
            )
        d.decline_reason = reason.strip()
        payload: Payload = ReferralDeclined(
            delivery_id=d.id,
            referral_id=d.referral_id,
            agency=d.agency,
            actor=actor,
            at=now,
            reason=d.decline_reason,
        )
    else:
        payload = event_type(
            delivery_id=d.id, referral_id=d.referral_id, agency=d.agency, actor=actor, at=now
        )
    d.status = to.value
    await _changed(session, d, kind=f"delivery.{to.value}", now=now)
    await add_event(session, delivery_event(payload, d))
    return d


# Erasure: a delivery keeps routing facts only, and its recipient must acknowledge the notice.


async def apply_erased(
    session: AsyncSession, *, referral_id: str, now: datetime | None = None
) -> list[str]:
    """Erase what notify holds about a referral (`referral.erased`); returns the ids of the
    deliveries erased now (none when redelivered: idempotent).

    Each delivery keeps its routing facts (agency, disclosure level, rule, deadline, status and
    times) and loses the referral's facts (urgency, region, kind, exploitation, minor) and the
    decline reason; its earlier change records keep their kind (the status history) but their
    snapshot becomes the erasure notice; its queued webhook and e-mail messages are cancelled
    and every message body of it is emptied; the outbox rows of the referral that every consumer
    has are deleted. Then each recipient is told through its channels (inbox, stream, webhook,
    e-mail) and must acknowledge."""
    now = now or utcnow()
    await write_staged(session)  # first decisions staged earlier in the transaction
    dialect = session.get_bind().dialect.name
    await session.exec(
        insert_ignore(dialect, ErasedReferral).values(referral_id=referral_id, erased_at=now)
    )
    deliveries = list(
        await session.exec(
            select(Delivery)
            .where(Delivery.referral_id == referral_id)
            .order_by(col(Delivery.created_at), col(Delivery.id))
        )
    )
    fresh = [d for d in deliveries if d.erased_at is None]
    for d in fresh:
        d.status = DeliveryStatus.ERASED.value
        d.urgency = d.region = d.kind = d.minor = d.decline_reason = None
        d.exploitation = []
        d.erased_at = d.updated_at = now
        d.erasure_acknowledged_at = None
        session.add(d)
    for d in deliveries:
        # Rewritten rather than deleted: SQLite would give a deleted tail's ids to new changes,
        # which live streams resuming past them would never see.
        await session.exec(
            update(DeliveryChange)
            .where(
                col(DeliveryChange.delivery_id) == d.id,
                col(DeliveryChange.kind).not_in(ERASURE_KINDS),
            )
            .values(
                item={k: v for k, v in erasure_notice(d).items() if k != "erasure_acknowledged_at"}
            )
        )
    old_messages = and_(
        col(Dispatch.delivery_id).in_([d.id for d in deliveries]),
        col(Dispatch.kind).not_in(ERASURE_KINDS),
    )
    # A retry queued before the erasure must not send the old data.
    await session.exec(
        update(Dispatch)
        .where(old_messages, col(Dispatch.status) == "pending")
        .values(status="cancelled", last_error="cancelled: the referral was erased", done_at=now)
    )
    await session.exec(update(Dispatch).where(old_messages).values(payload={}))
    await forget_delivered(session, key=referral_id)
    if not fresh:
        return []
    channels = await Channels.of(session, [d.agency for d in fresh])
    changes: list[dict[str, Any]] = []
    dispatches: list[dict[str, Any]] = []
    events: list[CloudEvent] = []
    for d in fresh:
        change, sends = _fanout(
            erasure_notice(d), kind="delivery.erased", now=now, channels=channels
        )
        changes.append(change)
        dispatches += sends
        told = DeliveryNotified(
            delivery_id=d.id, referral_id=d.referral_id, agency=d.agency, channel="inbox"
        )
        events.append(delivery_event(told, d))
    await _feed(session, changes, dispatches)
    await add_events(session, events)
    return [d.id for d in fresh]


async def acknowledge_erasure(
    session: AsyncSession, d: Delivery, *, actor: str, now: datetime
) -> bool:
    """Record that the recipient acknowledged the erasure notice: once (False when it already
    was; the same answer, no second event)."""
    if d.erasure_acknowledged_at is not None:
        return False
    d.erasure_acknowledged_at = now
    await _changed(session, d, kind="delivery.erasure_acknowledged", now=now)
    payload = ReferralErasureAcknowledged(
        delivery_id=d.id, referral_id=d.referral_id, agency=d.agency, actor=actor, at=now
    )
    await add_event(session, delivery_event(payload, d))
    return True


async def miss_deadlines(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Emit `referral.deadline_missed` for open deliveries past their deadline, once each.

    The conditional UPDATE is the claim: with several notify instances sweeping at once, only the
    one whose UPDATE changed the row emits the event.
    """
    due = await session.exec(
        select(Delivery)
        .where(
            col(Delivery.status).in_([s.value for s in OPEN]),
            col(Delivery.deadline) < now,
            col(Delivery.deadline_missed_at).is_(None),
        )
        .order_by(col(Delivery.deadline))
        .limit(limit)
    )
    missed = 0
    for d in list(due):
        claim = (
            update(Delivery)
            .where(and_(col(Delivery.id) == d.id, col(Delivery.deadline_missed_at).is_(None)))
            .values(deadline_missed_at=now)
        )
        if (await session.exec(claim)).rowcount != 1:
            continue
        assert d.deadline is not None
        payload = ReferralDeadlineMissed(
            delivery_id=d.id,
            referral_id=d.referral_id,
            agency=d.agency,
            deadline=d.deadline,
            rule=d.rule,
        )
        await add_event(session, delivery_event(payload, d))
        missed += 1
    return missed


def may_oversee(*, agency: str, roles: frozenset[str], coordinator: str) -> None:
    """Deliveries across agencies: the national coordinator's supervisors only (the
    coordinator answers for every referral not acknowledged in time); anyone else: 404."""
    if agency != coordinator or "supervisor" not in roles:
        raise NotFound("Not found.")
