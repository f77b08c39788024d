"""Intake domain logic. Plain functions; the caller owns the transaction."""

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession
from uuid6 import uuid7

from contracts.cloudevents import CloudEvent
from contracts.events import (
    DeliveryRef,
    ReferralAccepted,
    ReferralAcknowledged,
    ReferralCompleted,
    ReferralConsentChanged,
    ReferralDeclined,
    ReferralRouted,
    ReferralSubmitted,
    ReferralWithdrawn,
    RoutingReason,
)
from contracts.referrals import (
    Consent,
    ConsentScopes,
    RoutingFacts,
    TipIn,
    VictimReferralIn,
    VictimStatistics,
)
from contracts.vocabulary import Disclosure
from services.common.crypto import Sealed, Vault
from services.common.db import insert_ignore, insert_many
from services.common.errors import BadRequest, Conflict, NotFound
from services.common.models import utcnow
from services.common.outbox import add_event, add_events
from services.intake.models import IdempotencyRecord, RecipientRow, ReferenceCounter, ReferralRow

SERVICE = "intake"

# Forward-only order of a recipient's status; `escalated` is terminal for that delivery.
STATUS_RANK = {
    "routed": 0,
    "notified": 1,
    "acknowledged": 2,
    "accepted": 3,
    "declined": 3,
    "completed": 4,
    "escalated": 5,
}


def _event(payload: Any, *, referral_id: str, agency: str) -> CloudEvent:
    return CloudEvent.new(source=SERVICE, payload=payload, subject=referral_id, agency=agency)


# Submission


def split(body: VictimReferralIn | TipIn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(profile, secret): what may be stored in clear, and what is sealed."""
    if isinstance(body, VictimReferralIn):
        victim = body.victim
        profile = victim.model_dump(mode="json", exclude={"identity", "contact"})
        profile["minor"] = victim.minor
        secret = {
            "identity": victim.identity.model_dump(mode="json") if victim.identity else None,
            "contact": victim.contact.model_dump(mode="json") if victim.contact else None,
            "narrative": body.narrative,
            "external_ref": body.external_ref,
        }
        return profile, secret
    return {"source": body.source.value}, {
        "narrative": body.narrative,
        "external_ref": body.external_ref,
    }


async def reserve_references(session: AsyncSession, *, year: int, count: int) -> list[str]:
    """`count` consecutive `NRM-<year>-<6 digits>` references, unique under concurrency: the
    year's counter row is bumped once in the caller's transaction, so writers queue on its lock."""
    bump = (
        update(ReferenceCounter)
        .where(col(ReferenceCounter.year) == year)
        .values(last=col(ReferenceCounter.last) + count)
        .returning(col(ReferenceCounter.last))
    )
    bumped = (await session.exec(bump)).first()
    if bumped is None:  # first referral of the year
        dialect = session.get_bind().dialect.name
        await session.exec(insert_ignore(dialect, ReferenceCounter).values(year=year, last=0))
        bumped = (await session.exec(bump)).one()
    last = int(bumped[0])
    return [f"NRM-{year}-{n:06d}" for n in range(last - count + 1, last + 1)]


@dataclass(frozen=True, slots=True)
class Submission:
    body: VictimReferralIn | TipIn
    agency: str
    client_id: str
    idempotency_key: str | None
    body_hash: str


@dataclass(frozen=True, slots=True)
class Submitted:
    id: str
    reference: str
    status: str
    created: bool  # False: a replay of an earlier request with the same Idempotency-Key


async def submit_referrals(
    session: AsyncSession, *, submissions: list[Submission], vault: Vault
) -> list[Submitted | Conflict]:
    """Store referrals and stage their `referral.submitted` events, in the caller's transaction.

    Takes several at once so concurrent requests can share one transaction (group commit).
    Returns, per submission, the outcome or the `Conflict` of a reused Idempotency-Key.
    """
    outcomes: list[Submitted | Conflict | None] = [None] * len(submissions)
    claimed: dict[tuple[str, str], tuple[str, Submitted | None]] = {}
    fresh: list[int] = []
    for i, sub in enumerate(submissions):
        if sub.idempotency_key is None:
            fresh.append(i)
            continue
        slot = (sub.agency, sub.idempotency_key)
        if slot not in claimed:
            seen = await session.get(IdempotencyRecord, slot)
            if seen is not None:
                row = await session.get(ReferralRow, seen.referral_id)
                assert row is not None
                claimed[slot] = (
                    seen.body_hash,
                    Submitted(row.id, row.reference, row.status, False),
                )
            else:
                claimed[slot] = (sub.body_hash, None)
                fresh.append(i)
                continue
        body_hash, earlier = claimed[slot]
        if body_hash != sub.body_hash:
            outcomes[i] = Conflict("Idempotency-Key was already used with a different body.")
        else:
            outcomes[i] = earlier  # resolved below if the earlier one is in this batch
    now = datetime.now(UTC)
    references = await reserve_references(session, year=now.year, count=len(fresh)) if fresh else []
    rows: list[dict[str, Any]] = []
    events: list[CloudEvent] = []
    for i, reference in zip(fresh, references, strict=True):
        sub = submissions[i]
        referral_id = str(uuid7())
        facts = RoutingFacts.from_referral(sub.body, submitted_by=sub.agency)
        profile, secret = split(sub.body)
        sealed = vault.seal(secret, record_id=referral_id)
        body = sub.body
        consent = (
            body.consent.model_dump(mode="json") if isinstance(body, VictimReferralIn) else None
        )
        rows.append(
            {
                "id": referral_id,
                "reference": reference,
                "kind": body.kind.value,
                "status": "submitted",
                "submitted_by": sub.agency,
                "submitted_by_client": sub.client_id,
                "external_ref": None,  # sealed with the identity; in clear it could identify
                "urgency": body.urgency.value,
                "region": body.region,
                "created_at": now,
                "facts": facts.model_dump(mode="json"),
                "profile": profile,
                "consent": consent,
                "sealed": sealed.ciphertext,
                "wrapped_key": sealed.wrapped_key,
                "master_key_id": sealed.master_key_id,
            }
        )
        outcome = Submitted(referral_id, reference, "submitted", True)
        outcomes[i] = outcome
        if sub.idempotency_key is not None:
            session.add(
                IdempotencyRecord(
                    agency=sub.agency,
                    key=sub.idempotency_key,
                    body_hash=sub.body_hash,
                    referral_id=referral_id,
                )
            )
            claimed[(sub.agency, sub.idempotency_key)] = (
                sub.body_hash,
                Submitted(referral_id, reference, "submitted", False),
            )
        payload = ReferralSubmitted(
            referral_id=referral_id,
            reference=reference,
            submitted_at=now,
            facts=facts,
            statistics=VictimStatistics.consented(profile, facts.consent),
        )
        events.append(_event(payload, referral_id=referral_id, agency=sub.agency))
    if rows:
        await insert_many(session, ReferralRow, rows)
        await add_events(session, events)
    # Replays of a key first used earlier in this same batch.
    for i, sub in enumerate(submissions):
        if outcomes[i] is None and sub.idempotency_key is not None:
            outcomes[i] = claimed[(sub.agency, sub.idempotency_key)][1]
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


# Access


def effective_disclosure(recipient: RecipientRow, consent: dict[str, Any] | None) -> Disclosure:
    """The routed level, unless a consent scope it rests on has since been withdrawn."""
    given = consent or {}
    if any(not given.get(scope, False) for scope in recipient.requires_consent):
        return Disclosure.ANONYMOUS
    return Disclosure(recipient.disclosure)


async def visible_referral(
    session: AsyncSession, *, referral_id: str, agency: str, as_submitter: bool, as_recipient: bool
) -> tuple[ReferralRow, Disclosure]:
    """The referral and the level this agency may see, or NotFound (never "forbidden")."""
    row = await session.get(ReferralRow, referral_id)
    if row is not None:
        if as_submitter and row.submitted_by == agency:
            return row, Disclosure.FULL
        if as_recipient:
            recipient = await session.get(RecipientRow, (referral_id, agency))
            if recipient is not None:
                return row, effective_disclosure(recipient, row.consent)
    raise NotFound("No such referral.")


def render(row: ReferralRow, disclosure: Disclosure, vault: Vault) -> dict[str, Any]:
    """The referral as a caller at `disclosure` may see it."""
    facts = row.facts
    out: dict[str, Any] = {
        "id": row.id,
        "reference": row.reference,
        "kind": row.kind,
        "status": row.status,
        "disclosure": disclosure.value,
        "submitted_by": row.submitted_by,
        "submitted_at": row.created_at.isoformat(),
        "region": row.region,
        "urgency": row.urgency,
        "exploitation": facts["exploitation"],
        "destination_countries": facts.get("destination_countries", []),
        "official_involvement": facts.get("official_involvement", False),
    }
    if row.kind == "tip":
        out["source"] = row.profile.get("source")
    else:
        out["victim"] = {
            "status": facts.get("victim_status"),
            "minor": facts.get("minor", False),
            "needs": facts.get("needs", []),
        }
    if disclosure == Disclosure.ANONYMOUS:
        return out
    secret = vault.open(Sealed(row.sealed, row.wrapped_key, row.master_key_id), record_id=row.id)
    if row.kind != "tip":
        out["victim"] = {
            **row.profile,
            "identity": secret.get("identity"),
            "contact": secret.get("contact"),
        }
        out["consent"] = row.consent
    if disclosure == Disclosure.FULL:
        out["narrative"] = secret.get("narrative")
        out["external_ref"] = secret.get("external_ref")
    return out


async def list_referrals(
    session: AsyncSession,
    *,
    agency: str,
    as_submitter: bool,
    as_recipient: bool,
    status: str | None,
    urgency: str | None,
    region: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ReferralRow], str | None]:
    """Newest first; the cursor is the last id of the previous page (ids are UUIDv7)."""
    scopes = []
    if as_submitter:
        scopes.append(col(ReferralRow.submitted_by) == agency)
    if as_recipient:
        routed = select(col(RecipientRow.referral_id)).where(col(RecipientRow.agency) == agency)
        scopes.append(col(ReferralRow.id).in_(routed))
    query = select(ReferralRow).where(or_(*scopes)).order_by(col(ReferralRow.id).desc())
    if status:
        query = query.where(col(ReferralRow.status) == status)
    if urgency:
        query = query.where(col(ReferralRow.urgency) == urgency)
    if region:
        query = query.where(col(ReferralRow.region) == region)
    if since:
        query = query.where(col(ReferralRow.created_at) >= since)
    if until:
        query = query.where(col(ReferralRow.created_at) < until)
    if cursor:
        query = query.where(col(ReferralRow.id) < decode_cursor(cursor))
    rows = list(await session.exec(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more and rows else None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Invalid cursor.") from None
    if len(value) != 36:
        raise BadRequest("Invalid cursor.")
    return value


# Consent, withdrawal, status


async def _own(session: AsyncSession, referral_id: str, agency: str) -> ReferralRow:
    row = await session.get(ReferralRow, referral_id)
    if row is None or row.submitted_by != agency:
        raise NotFound("No such referral.")
    return row


async def change_consent(
    session: AsyncSession, *, referral_id: str, agency: str, consent: Consent
) -> ReferralRow:
    row = await _own(session, referral_id, agency)
    if row.kind != "victim_referral" or row.consent is None:
        raise Conflict("Only a victim referral carries consent.")
    if row.status == "withdrawn":
        raise Conflict("The referral was withdrawn.")
    previous = ConsentScopes.model_validate(
        {k: row.consent[k] for k in ("services", "law_enforcement", "statistics")}
    )
    scopes = ConsentScopes(
        services=consent.services,
        law_enforcement=consent.law_enforcement,
        statistics=consent.statistics,
    )
    row.consent = consent.model_dump(mode="json")
    facts = RoutingFacts.model_validate({**row.facts, "consent": scopes.model_dump()})
    row.facts = facts.model_dump(mode="json")
    session.add(row)
    payload = ReferralConsentChanged(
        referral_id=row.id,
        reference=row.reference,
        changed_by=agency,
        previous=previous,
        consent=scopes,
        facts=facts,
        statistics=VictimStatistics.consented(row.profile, scopes),
    )
    await add_event(session, _event(payload, referral_id=row.id, agency=agency))
    return row


async def withdraw(session: AsyncSession, *, referral_id: str, agency: str) -> ReferralRow:
    row = await _own(session, referral_id, agency)
    if row.status == "withdrawn":
        return row
    row.status = "withdrawn"
    session.add(row)
    payload = ReferralWithdrawn(referral_id=row.id, reference=row.reference, withdrawn_by=agency)
    await add_event(session, _event(payload, referral_id=row.id, agency=agency))
    return row


async def recipients(
    session: AsyncSession, *, referral_id: str, agency: str
) -> tuple[ReferralRow, list[RecipientRow]]:
    row = await _own(session, referral_id, agency)
    rows = await session.exec(
        select(RecipientRow)
        .where(col(RecipientRow.referral_id) == referral_id)
        .order_by(col(RecipientRow.agency))
    )
    return row, list(rows)


# Consumed events


async def apply_routed(session: AsyncSession, *, routed: ReferralRouted) -> None:
    for decision in routed.recipients:
        row = await session.get(RecipientRow, (routed.referral_id, decision.agency))
        if row is None:
            row = RecipientRow(
                referral_id=routed.referral_id,
                agency=decision.agency,
                disclosure=decision.disclosure.value,
                rule=decision.rule,
            )
        row.disclosure = decision.disclosure.value
        row.requires_consent = list(decision.requires_consent)
        row.rule = decision.rule
        row.deadline = decision.deadline
        row.updated_at = utcnow()
        session.add(row)
    if routed.reason == RoutingReason.ESCALATION and routed.escalated_delivery_id:
        escalated = await session.exec(
            select(RecipientRow).where(
                col(RecipientRow.delivery_id) == routed.escalated_delivery_id
            )
        )
        for row in escalated:
            row.status = "escalated"
            session.add(row)


CASE_STATUS: dict[type[DeliveryRef], str] = {
    ReferralAcknowledged: "acknowledged",
    ReferralAccepted: "accepted",
    ReferralDeclined: "declined",
    ReferralCompleted: "completed",
}


async def apply_case_event(session: AsyncSession, *, event: DeliveryRef, status: str) -> None:
    """Move a recipient's status forward (case events may overtake the routing decision)."""
    row = await session.get(RecipientRow, (event.referral_id, event.agency))
    if row is None:
        row = RecipientRow(
            referral_id=event.referral_id,
            agency=event.agency,
            disclosure=Disclosure.ANONYMOUS.value,  # until the routing decision arrives
            rule="",
            status="routed",
        )
    row.delivery_id = event.delivery_id
    if STATUS_RANK[status] >= STATUS_RANK.get(row.status, 0):
        row.status = status
    row.updated_at = utcnow()
    session.add(row)
