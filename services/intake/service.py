"""Intake domain logic. Plain functions; the caller owns the transaction."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, case
from sqlalchemy import update as core_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession
from uuid6 import uuid7

from contracts.cloudevents import CloudEvent
from contracts.events import (
    DeliveryRef,
    IdentificationDecided,
    IdentificationOverdue,
    InvestigationRecorded,
    ReferralAccepted,
    ReferralAcknowledged,
    ReferralCompleted,
    ReferralConsentChanged,
    ReferralDeclined,
    ReferralImplicatedChanged,
    ReferralRiskChanged,
    ReferralRouted,
    ReferralSubmitted,
    ReferralWithdrawn,
    ReflectionEnded,
    ReflectionStarted,
    RoutingReason,
)
from contracts.referrals import (
    Consent,
    ConsentScopes,
    RoutingFacts,
    Safety,
    TipIn,
    VictimReferralIn,
    VictimStatistics,
)
from contracts.vocabulary import (
    Disclosure,
    IdentificationBasis,
    IdentificationDecision,
    RiskLevel,
    Urgency,
    VictimStatus,
)
from services.common.access import admin_changed
from services.common.crypto import Vault
from services.common.db import insert_ignore, insert_many, staged, write_staged
from services.common.errors import Conflict, NotFound, UnprocessableContent
from services.common.models import utcnow
from services.common.outbox import add_event, add_events
from services.common.retention import majority_on
from services.intake import repository
from services.intake.models import (
    IdempotencyRecord,
    Identification,
    Investigation,
    Recipient,
    Recusal,
    ReferenceCounter,
    Referral,
)
from services.intake.repository import implicated

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


def referral_event(
    payload: Any,
    *,
    referral_id: str,
    agency: str,
    actor: str | None = None,
    traceparent: str | None = None,
) -> CloudEvent:
    return CloudEvent.new(
        source=SERVICE,
        payload=payload,
        subject=referral_id,
        agency=agency,
        actor=actor,
        traceparent=traceparent,
    )


# Submission


def split(body: VictimReferralIn | TipIn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(profile, secret): what may be stored in clear, and what is sealed."""
    if isinstance(body, VictimReferralIn):
        victim = body.victim
        profile = victim.model_dump(mode="json", exclude={"identity", "contact"})
        profile["age"] = victim.age_now()  # from the date of birth when there is one
        profile["minor"] = victim.minor
        profile["minor_presumed"] = victim.presumed_minor
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
    conn = await session.connection()
    bumped = (await conn.execute(_BUMP_REFERENCES, {"for_year": year, "count": count})).scalar()
    if bumped is None:  # first referral of the year
        dialect = conn.dialect.name
        await conn.execute(insert_ignore(dialect, ReferenceCounter).values(year=year, last=0))
        bumped = (
            await conn.execute(_BUMP_REFERENCES, {"for_year": year, "count": count})
        ).scalar_one()
    last = int(bumped)
    return [f"NRM-{year}-{n:06d}" for n in range(last - count + 1, last + 1)]


# Core and built once: through the ORM this one statement cost ~0.75 ms of a submission batch.
_COUNTERS: Table = ReferenceCounter.__table__  # type: ignore[attr-defined]
_BUMP_REFERENCES = (
    core_update(_COUNTERS)
    .where(_COUNTERS.c.year == bindparam("for_year"))
    .values(last=_COUNTERS.c.last + bindparam("count"))
    .returning(_COUNTERS.c.last)
)


@dataclass(frozen=True, slots=True)
class Submission:
    body: VictimReferralIn | TipIn
    agency: str
    client_id: str
    idempotency_key: str | None
    body_hash: str
    actor: str | None = None  # the person who submitted, or the client
    traceparent: str | None = None  # the request's: the batch writer runs outside it


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
                row = await session.get(Referral, seen.referral_id)
                assert row is not None
                if row.status == "erased":  # its body hash is gone with it: never resubmitted
                    outcomes[i] = Conflict("The referral this Idempotency-Key created was erased.")
                    continue
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
        majority = (
            majority_on(
                born=body.victim.born,
                age=body.victim.age,
                recorded=now.date(),
                minor=body.victim.minor,
            )
            if isinstance(body, VictimReferralIn)
            else None
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
                "urgency": facts.urgency.value,  # high risk raises it to immediate
                "region": body.region,
                "created_at": now,
                "facts": facts.model_dump(mode="json"),
                "profile": profile,
                "consent": consent,
                "sealed": sealed.ciphertext,
                "wrapped_key": sealed.wrapped_key,
                "master_key_id": sealed.master_key_id,
                "majority_on": majority,
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
        events.append(
            referral_event(
                payload,
                referral_id=referral_id,
                agency=sub.agency,
                actor=sub.actor,
                traceparent=sub.traceparent,
            )
        )
    if rows:
        await insert_many(session, Referral, rows)
        await add_events(session, events)
    # Replays of a key first used earlier in this same batch.
    for i, sub in enumerate(submissions):
        if outcomes[i] is None and sub.idempotency_key is not None:
            outcomes[i] = claimed[(sub.agency, sub.idempotency_key)][1]
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


# Access


def effective_disclosure(recipient: Recipient, consent: dict[str, Any] | None) -> Disclosure:
    """The routed level, unless a consent scope it rests on has since been withdrawn."""
    given = consent or {}
    if any(not given.get(scope, False) for scope in recipient.requires_consent):
        return Disclosure.ANONYMOUS
    return Disclosure(recipient.disclosure)


def check_implicated(named: list[str], *, known: frozenset[str], path: str) -> None:
    """422 naming each agency that is not configured (a misspelt id would otherwise exclude
    nobody, and the agency meant would get the case). `path`: the list's field path."""
    if not known:
        return  # no agencies.yaml: nothing to check against
    unknown = [
        {"path": f"{path}/{i}", "type": "unknown_agency", "message": f"no agency {a!r}"}
        for i, a in enumerate(named)
        if a not in known
    ]
    if unknown:
        raise UnprocessableContent("An agency named implicated is not known.", errors=unknown)


def check_region(region: str, *, country: str | None, path: str) -> None:
    """422 for a region outside the country the exchange serves (`RU-MOW` in Kazakhstan's):
    no rule would cover it, and it is more likely a mistake than a case."""
    if country is not None and not region.startswith(f"{country}-"):
        raise UnprocessableContent(
            "The region is not in the country this exchange serves.",
            errors=[
                {
                    "path": path,
                    "type": "region_outside_country",
                    "message": f"a region of {country} (ISO 3166-2 {country}-…) is required",
                }
            ],
        )


@dataclass(frozen=True, slots=True)
class Visible:
    row: Referral
    disclosure: Disclosure
    submitter: bool  # the caller's agency submitted it


async def visible(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    as_submitter: bool,
    as_recipient: bool,
    person: str | None = None,
) -> Visible:
    """The referral, the level this agency may see and whether it submitted it, or NotFound
    (never "forbidden"). An agency named as implicated, and a person who recused themselves,
    get NotFound like any stranger."""
    readable = repository.readable_referrals(
        agency=agency, as_submitter=as_submitter, as_recipient=as_recipient, person=person
    )
    row = (await session.exec(readable.where(col(Referral.id) == referral_id))).first()
    if row is not None and repository.may_read(row, agency=agency, as_submitter=as_submitter):
        if as_submitter and row.submitted_by == agency:
            return Visible(row, Disclosure.FULL, True)
        recipient = await session.get(Recipient, (referral_id, agency))
        if recipient is not None:
            return Visible(row, effective_disclosure(recipient, row.consent), False)
    raise NotFound("No such referral.")


def contactable(contact: dict[str, Any], profile: dict[str, Any]) -> bool:
    """Contact details go to a recipient only where contacting the victim is safe."""
    safety = profile.get("safety") or {}
    return bool(contact.get("safe_to_contact")) and not safety.get("do_not_contact", False)


def contact_for(
    contact: dict[str, Any] | None, profile: dict[str, Any], *, viewer: str, submitter: bool
) -> dict[str, Any] | None:
    """The contact block a reader may see: everything for the submitter; for a recipient the
    phone and e-mail only where contacting is safe, the address only if shared with it."""
    if contact is None or submitter:
        return contact
    safe = contactable(contact, profile)
    out: dict[str, Any] = {"safe_to_contact": safe}
    if safe:
        out.update({k: contact[k] for k in ("phone", "email") if contact.get(k) is not None})
    if contact.get("address") and viewer in contact.get("address_shared_with", []):
        out["address"] = contact["address"]
    return out


def render(
    row: Referral,
    disclosure: Disclosure,
    vault: Vault,
    *,
    viewer: str = "",
    submitter: bool = False,
) -> dict[str, Any]:
    """The referral as `viewer` at `disclosure` may see it (`submitter`: it submitted it)."""
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
    if submitter:  # who was named implicated is for the submitter's eyes
        out["implicated"] = implicated(row)
    if row.kind == "tip":
        out["source"] = row.profile.get("source")
    else:
        out["victim"] = {
            "status": facts.get("victim_status"),
            "minor": facts.get("minor", False),
            "needs": facts.get("needs", []),
        }
        if facts.get("risk_level"):
            out["victim"]["risk_level"] = facts["risk_level"]
    if disclosure == Disclosure.ANONYMOUS:
        return out
    secret = vault.open_row(row, record_id=row.id)
    if row.kind != "tip":
        out["victim"] = {
            **row.profile,
            "status": facts.get("victim_status"),  # as identification decided, since submission
            "identity": secret.get("identity"),
            "contact": contact_for(
                secret.get("contact"), row.profile, viewer=viewer, submitter=submitter
            ),
        }
        out["consent"] = row.consent
    if disclosure == Disclosure.FULL:
        out["narrative"] = secret.get("narrative")
        out["external_ref"] = secret.get("external_ref")
    return out


# Consent, withdrawal, status


async def _own(session: AsyncSession, referral_id: str, agency: str) -> Referral:
    row = await session.get(Referral, referral_id)
    if row is None or row.submitted_by != agency or row.status == "erased":
        raise NotFound("No such referral.")
    return row


async def _with_the_victim(
    session: AsyncSession, *, referral_id: str, agency: str, person: str | None
) -> Visible:
    """The submitter, or a recipient at `support` or above (someone who is with the victim);
    anyone else gets NotFound."""
    found = await visible(
        session,
        referral_id=referral_id,
        agency=agency,
        as_submitter=True,
        as_recipient=True,
        person=person,
    )
    if not found.submitter and found.disclosure == Disclosure.ANONYMOUS:
        raise NotFound("No such referral.")
    return found


async def change_consent(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    consent: Consent,
    person: str | None = None,
    actor: str | None = None,
) -> Referral:
    """Record the victim's consent as it now is. The submitter or any recipient at `support` or
    above may (the shelter that is with the victim); a recipient states the language, whether an
    interpreter was present and the form. Every recipient's level is re-decided at once."""
    found = await _with_the_victim(session, referral_id=referral_id, agency=agency, person=person)
    row = found.row
    if row.kind != "victim_referral" or row.consent is None:
        raise Conflict("Only a victim referral carries consent.")
    if row.status == "withdrawn":
        raise Conflict("The referral was withdrawn.")
    if not found.submitter:
        missing = [f for f in ("language", "interpreter", "form") if getattr(consent, f) is None]
        if missing:
            raise UnprocessableContent(
                "A recipient recording consent states the language, interpreter and form.",
                errors=[
                    {"path": f"/{f}", "type": "missing", "message": "Field required"}
                    for f in missing
                ],
            )
    previous = ConsentScopes.model_validate(
        {k: row.consent[k] for k in ("services", "law_enforcement", "statistics")}
    )
    scopes = ConsentScopes(
        services=consent.services,
        law_enforcement=consent.law_enforcement,
        statistics=consent.statistics,
    )
    row.consent = {**consent.model_dump(mode="json", exclude_none=True), "recorded_by": agency}
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
    await add_event(
        session, referral_event(payload, referral_id=row.id, agency=agency, actor=actor)
    )
    return row


async def change_safety(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    safety: Safety,
    person: str | None = None,
    actor: str | None = None,
) -> Referral:
    """Record a new safety assessment (submitter, or a recipient at `support` or above). A
    changed risk level is announced (`referral.risk_changed`, the level only); high risk raises
    the urgency to `immediate` and brings in the coordinator."""
    found = await _with_the_victim(session, referral_id=referral_id, agency=agency, person=person)
    row = found.row
    if row.kind != "victim_referral":
        raise Conflict("Only a victim referral carries a safety assessment.")
    if row.status == "withdrawn":
        raise Conflict("The referral was withdrawn.")
    before = row.facts.get("risk_level")
    row.profile = {**row.profile, "safety": safety.model_dump(mode="json")}
    level = safety.risk_level
    if level is not None and level.value != before:
        changes: dict[str, Any] = {"risk_level": level.value}
        if level == RiskLevel.HIGH:
            changes["urgency"] = Urgency.IMMEDIATE.value
            row.urgency = Urgency.IMMEDIATE.value
        facts = RoutingFacts.model_validate({**row.facts, **changes})
        row.facts = facts.model_dump(mode="json")
        payload = ReferralRiskChanged(referral_id=row.id, reference=row.reference, risk_level=level)
        await add_event(
            session, referral_event(payload, referral_id=row.id, agency=agency, actor=actor)
        )
    session.add(row)
    return row


async def name_implicated(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    agencies: list[str],
    overseers: frozenset[str],
    person: str | None = None,
    actor: str | None = None,
) -> Referral:
    """Add agencies to those implicated (never removed here). The submitter, or a recipient
    that is a prosecutor or the coordinator (`overseers`), may; an agency named implicated gets
    NotFound, so it can neither see nor undo it."""
    found = await visible(
        session,
        referral_id=referral_id,
        agency=agency,
        as_submitter=True,
        as_recipient=True,
        person=person,
    )
    if not found.submitter and agency not in overseers:
        raise NotFound("No such referral.")
    row = found.row
    if row.submitted_by in agencies:
        raise UnprocessableContent(
            "The submitting agency cannot be named implicated in its own referral.",
            errors=[{"path": "implicated", "type": "value_error", "message": "the submitter"}],
        )
    named = list(dict.fromkeys([*implicated(row), *agencies]))
    if named == implicated(row):
        return row
    facts = RoutingFacts.model_validate({**row.facts, "implicated": named})
    row.facts = facts.model_dump(mode="json")
    session.add(row)
    payload = ReferralImplicatedChanged(referral_id=row.id, reference=row.reference, facts=facts)
    await add_event(
        session, referral_event(payload, referral_id=row.id, agency=agency, actor=actor)
    )
    return row


async def recuse(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    person: str | None,
    reason: str | None,
    actor: str | None = None,
) -> Referral:
    """A person steps away from a referral (a conflict of interest): from now on they get
    NotFound for it, whatever their agency may see. Recorded in the audit log."""
    found = await visible(
        session,
        referral_id=referral_id,
        agency=agency,
        as_submitter=True,
        as_recipient=True,
        person=person,
    )
    if person is None:  # checked after access, so a stranger learns nothing
        raise Conflict("Only a person can recuse themselves; this token is a system client's.")
    session.add(Recusal(referral_id=referral_id, subject=person, agency=agency))
    await admin_changed(
        session,
        source=SERVICE,
        action="referral.recused",
        target_type="referral",
        target_id=referral_id,
        actor=person,
        details={"agency": agency, **({"reason": reason} if reason else {})},
        subject=referral_id,
        agency=agency,
        event_actor=actor or person,
    )
    return found.row


async def withdraw(
    session: AsyncSession, *, referral_id: str, agency: str, actor: str | None = None
) -> Referral:
    row = await _own(session, referral_id, agency)
    if row.status == "withdrawn":
        return row
    row.status = "withdrawn"
    row.withdrawn_at = utcnow()  # the withdrawn referral's retention period runs from here
    session.add(row)
    payload = ReferralWithdrawn(referral_id=row.id, reference=row.reference, withdrawn_by=agency)
    await add_event(
        session, referral_event(payload, referral_id=row.id, agency=agency, actor=actor)
    )
    return row


async def recipients(
    session: AsyncSession, *, referral_id: str, agency: str
) -> tuple[Referral, list[Recipient]]:
    row = await _own(session, referral_id, agency)
    rows = await session.exec(
        select(Recipient)
        .where(col(Recipient.referral_id) == referral_id)
        .order_by(col(Recipient.agency))
    )
    named = implicated(row)
    return row, [r for r in rows if r.agency not in named]


# Consumed events


async def _status(session: AsyncSession, referral_id: str) -> str | None:
    """The referral's status, None if unknown here. One column, not the ORM row: consumers ask
    for every routing decision and case event, and a whole referral is many sealed columns.
    Events about an erased referral (late or replayed) leave nothing behind."""
    conn = await session.connection()
    return (await conn.execute(_STATUS, {"id": referral_id})).scalar()


_STATUS = select(col(Referral.status)).where(col(Referral.id) == bindparam("id"))


def _rank(status: Any) -> Any:
    """`STATUS_RANK` in SQL (0 for anything else, as `STATUS_RANK.get(status, 0)`)."""
    return case(STATUS_RANK, value=status, else_=0)


def _recipient_upserts(make: Any) -> tuple[Any, Any]:
    """Per dialect, built once: `INSERT INTO recipient ... ON CONFLICT (referral_id, agency)`
    taking a routing decision's terms (status and delivery untouched), and one taking a case
    event's delivery and raising the status (never lowering it: an equal rank, as accepted and
    declined, takes the later one)."""
    table = Recipient.__table__  # type: ignore[attr-defined]
    key = ["referral_id", "agency"]
    routed = make(table)
    terms = ("disclosure", "requires_consent", "rule", "deadline", "updated_at")
    moved = make(table)
    new = moved.excluded
    return (
        routed.on_conflict_do_update(
            index_elements=key, set_={name: routed.excluded[name] for name in terms}
        ),
        moved.on_conflict_do_update(
            index_elements=key,
            set_={
                "delivery_id": new.delivery_id,
                "updated_at": new.updated_at,
                "status": case(
                    (_rank(new.status) >= _rank(table.c.status), new.status),
                    else_=table.c.status,
                ),
            },
        ),
    )


_UPSERTS = {
    "sqlite": _recipient_upserts(sqlite_insert),
    "postgresql": _recipient_upserts(pg_insert),
}


@dataclass
class _RecipientWrites:
    """What this transaction's routing decisions and case events write to `recipient` (and the
    identification clocks), staged (`db.staged`) and written together before it commits: one
    read of the referrals' statuses (an erased referral's events leave nothing), then one
    statement per kind. The kinds commute (terms never touch a status or delivery, a status
    move never the terms, a clock is inserted once), so only each kind keeps event order."""

    terms: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    moves: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    clocks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_terms(self, row: dict[str, Any]) -> None:
        # A later decision's terms replace an earlier one's, as one statement after the other.
        self.terms[row["referral_id"], row["agency"]] = row

    def add_move(self, row: dict[str, Any]) -> None:
        """Fold moves of one recipient as the upsert would apply them in turn: the status of
        the last of the highest rank, the delivery and time of the last (a statement may not
        touch a row twice)."""
        key = row["referral_id"], row["agency"]
        earlier = self.moves.get(key)
        if earlier is not None and STATUS_RANK.get(earlier["status"], 0) > STATUS_RANK.get(
            row["status"], 0
        ):
            row = {**row, "status": earlier["status"]}
        self.moves[key] = row

    def write(self, session: Session) -> None:
        if not (self.terms or self.moves or self.clocks):
            return
        conn = session.connection()
        ids = {k[0] for k in self.terms} | {k[0] for k in self.moves} | set(self.clocks)
        known = {i: status for i, status in conn.execute(_STATUSES, {"ids": list(ids)})}
        terms_upsert, moves_upsert = _UPSERTS[conn.dialect.name]
        terms = [r for k, r in self.terms.items() if known.get(k[0]) != "erased"]
        if terms:
            conn.execute(terms_upsert, terms)
        moves = [r for k, r in self.moves.items() if known.get(k[0]) != "erased"]
        if moves:
            conn.execute(moves_upsert, moves)
        # A clock only for a referral known here and not erased.
        clocks = [r for i, r in self.clocks.items() if known.get(i) not in (None, "erased")]
        if clocks:
            conn.execute(insert_ignore(conn.dialect.name, Identification), clocks)
        self.terms, self.moves, self.clocks = {}, {}, {}


_STATUSES = select(col(Referral.id), col(Referral.status)).where(
    col(Referral.id).in_(bindparam("ids", expanding=True))
)


async def apply_routed(session: AsyncSession, *, routed: ReferralRouted) -> None:
    """A routing decision: its recipients' terms (staged), the recipients it removed, the
    escalated delivery, and the identification clocks of a victim referral."""
    writes = staged(session, _RecipientWrites)
    if routed.removed or (
        routed.reason == RoutingReason.ESCALATION and routed.escalated_delivery_id
    ):
        # Rare, and they touch rows the staged writes may create: those go first.
        await write_staged(session)
        if await _status(session, routed.referral_id) == "erased":
            return
        await _remove_and_escalate(session, routed=routed)
    now = utcnow()
    for decision in routed.recipients:
        # A recipient new to intake starts at `routed`; a known one (a case event may have
        # overtaken the decision) keeps its status and delivery, and takes the decision's terms.
        writes.add_terms(
            {
                "referral_id": routed.referral_id,
                "agency": decision.agency,
                "disclosure": decision.disclosure.value,
                "requires_consent": list(decision.requires_consent),
                "rule": decision.rule,
                "deadline": decision.deadline,
                "status": "routed",
                "delivery_id": None,
                "updated_at": now,
            }
        )
    if routed.identification is not None:
        _start_identification(writes, routed=routed)


async def _remove_and_escalate(session: AsyncSession, *, routed: ReferralRouted) -> None:
    table = Recipient.__table__  # type: ignore[attr-defined]
    conn = await session.connection()
    if routed.removed:  # named as implicated: no longer a recipient at all
        await conn.execute(
            table.delete().where(
                table.c.referral_id == routed.referral_id,
                table.c.agency.in_(list(routed.removed)),
            )
        )
    if routed.reason == RoutingReason.ESCALATION and routed.escalated_delivery_id:
        await conn.execute(
            table.update()
            .where(table.c.delivery_id == routed.escalated_delivery_id)
            .values(status="escalated")
        )


CASE_STATUS: dict[type[DeliveryRef], str] = {
    ReferralAcknowledged: "acknowledged",
    ReferralAccepted: "accepted",
    ReferralDeclined: "declined",
    ReferralCompleted: "completed",
}


async def apply_case_event(session: AsyncSession, *, event: DeliveryRef, status: str) -> None:
    """Move a recipient's status forward (case events may overtake the routing decision),
    staged: the row as a new recipient (`anonymous` until the routing decision arrives), or the
    known one's status raised."""
    staged(session, _RecipientWrites).add_move(
        {
            "referral_id": event.referral_id,
            "agency": event.agency,
            "disclosure": Disclosure.ANONYMOUS.value,
            "requires_consent": [],
            "rule": "",
            "deadline": None,
            "status": status,
            "delivery_id": event.delivery_id,
            "updated_at": utcnow(),
        }
    )


# Identification (CoE Convention art. 10, 12, 13): the competent authority's decisions, the
# reasonable-grounds deadline and the recovery and reflection period.

# The status each decision may follow.
STEPS: dict[IdentificationDecision, VictimStatus] = {
    IdentificationDecision.REASONABLE_GROUNDS: VictimStatus.POTENTIAL,
    IdentificationDecision.NO_REASONABLE_GROUNDS: VictimStatus.POTENTIAL,
    IdentificationDecision.CONFIRMED: VictimStatus.REASONABLE_GROUNDS,
    IdentificationDecision.NOT_CONFIRMED: VictimStatus.REASONABLE_GROUNDS,
}
CLOCK_SKEW = timedelta(minutes=5)  # a decision dated this far ahead of our clock is accepted


def _start_identification(writes: _RecipientWrites, *, routed: ReferralRouted) -> None:
    """Keep the clocks the policy gave a victim referral (first decision only: a redelivered
    or later decision never restarts them)."""
    terms = routed.identification
    assert terms is not None
    # Every referral starts as a potential victim (the contract allows nothing else): only the
    # competent authority's decisions move it on. An existing row stays as it is (and within a
    # transaction, the first decision's terms).
    writes.clocks.setdefault(
        routed.referral_id,
        {
            "referral_id": routed.referral_id,
            "authority": terms.authority,
            "status": VictimStatus.POTENTIAL.value,
            "reasonable_grounds_due": terms.reasonable_grounds_due,
            "reflection_period_seconds": terms.reflection_period.total_seconds(),
            "updated_at": utcnow(),
        },
    )


def identification_view(ident: Identification | None) -> dict[str, Any] | None:
    if ident is None:
        return None
    return {
        "status": ident.status,
        "reasonable_grounds_due": ident.reasonable_grounds_due.isoformat(),
        "reflection_ends": ident.reflection_ends.isoformat() if ident.reflection_ends else None,
        "decided_at": ident.decided_at.isoformat() if ident.decided_at else None,
        "basis": ident.basis,
        "authority": ident.authority,
        "overdue": ident.overdue_at is not None and ident.status == VictimStatus.POTENTIAL.value,
    }


def investigation_view(
    inv: Investigation | None, vault: Vault | None, *, disclosure: Disclosure
) -> dict[str, Any] | None:
    """Opened, date and agency for every reader; the number at `full` only."""
    if inv is None:
        return None
    out: dict[str, Any] = {"opened": inv.opened, "date": inv.date.isoformat(), "agency": inv.agency}
    if disclosure == Disclosure.FULL and vault is not None:
        secret = vault.open_row(inv, record_id=_investigation_record(inv.referral_id))
        out["number"] = secret.get("number")
    return out


async def progress(
    session: AsyncSession, referral_id: str
) -> tuple[Identification | None, Investigation | None]:
    return (
        await session.get(Identification, referral_id),
        await session.get(Investigation, referral_id),
    )


async def running_clocks(
    session: AsyncSession, *, agency: str, everyone: bool, limit: int
) -> list[tuple[Identification, str]]:
    """Identification clocks still running (awaiting reasonable grounds, or in the reflection
    period), soonest first, with each referral's reference: every authority's for the national
    coordinator (`everyone`), otherwise those the agency is the authority for. A referral naming
    the caller's agency implicated is left out, as everywhere else."""
    running = [VictimStatus.POTENTIAL.value, VictimStatus.REASONABLE_GROUNDS.value]
    query = (
        select(Identification, Referral)
        .join(Referral, col(Referral.id) == col(Identification.referral_id))
        .where(col(Identification.status).in_(running))
        .where(col(Referral.status) != "withdrawn")
        .order_by(col(Identification.reasonable_grounds_due), col(Identification.referral_id))
        .limit(limit)
    )
    if not everyone:
        query = query.where(col(Identification.authority) == agency)
    rows = (await session.exec(query)).all()
    return [(ident, ref.reference) for ident, ref in rows if agency not in implicated(ref)]


async def decide_identification(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    decision: IdentificationDecision,
    decided_at: datetime,
    basis: IdentificationBasis | None,
    person: str | None = None,
    actor: str | None = None,
    now: datetime | None = None,
) -> Identification:
    """Record a decision of the competent authority (the caller holds the supervisor role;
    any other agency, an implicated one, or a person who recused gets NotFound). Illegal steps,
    and a conclusive negative decision before the reflection period ends, are a Conflict."""
    now = now or datetime.now(UTC)
    row = await session.get(Referral, referral_id)
    ident = await session.get(Identification, referral_id)
    if (
        row is None
        or row.status == "erased"
        or ident is None
        or ident.authority != agency
        or agency in implicated(row)
        or (person and await session.get(Recusal, (referral_id, person)) is not None)
    ):
        raise NotFound("No such referral.")
    if row.status == "withdrawn":
        raise Conflict("The referral was withdrawn.")
    # Submission is stamped by our own clock: no decision predates it (to the second, as
    # people write times). Ahead of now, a decider's clock may run a little fast.
    if decided_at > now + CLOCK_SKEW or decided_at < row.created_at.replace(microsecond=0):
        raise UnprocessableContent(
            "`decided_at` must lie between the referral's submission and now.",
            errors=[{"path": "decided_at", "type": "value_error", "message": "out of range"}],
        )
    if STEPS[decision].value != ident.status:
        raise Conflict(
            f"A `{decision.value}` decision cannot follow `{ident.status}` "
            f"(it follows `{STEPS[decision].value}`)."
        )
    if ident.decided_at is not None and decided_at < ident.decided_at:
        raise Conflict("A decision cannot be dated before the previous one.")
    if (
        decision == IdentificationDecision.NOT_CONFIRMED
        and ident.reflection_ends is not None
        and decided_at < ident.reflection_ends
    ):
        raise Conflict(
            "The recovery and reflection period runs until "
            f"{ident.reflection_ends.isoformat()}: a conclusive decision before then must be "
            "`confirmed`."
        )
    previous = VictimStatus(ident.status)
    ident.status = decision.value
    ident.decided_at = decided_at
    ident.basis = basis.value if basis else None
    ident.decided_by = actor
    ident.updated_at = utcnow()
    events: list[Any] = []
    if decision == IdentificationDecision.REASONABLE_GROUNDS:
        ident.reflection_ends = decided_at + timedelta(seconds=ident.reflection_period_seconds)
        events.append(
            ReflectionStarted(
                referral_id=row.id,
                reference=row.reference,
                started_at=decided_at,
                ends_at=ident.reflection_ends,
            )
        )
    session.add(ident)
    facts = RoutingFacts.model_validate({**row.facts, "victim_status": decision.value})
    row.facts = facts.model_dump(mode="json")
    session.add(row)
    decided = IdentificationDecided(
        referral_id=row.id,
        reference=row.reference,
        authority=agency,
        decision=decision,
        previous=previous,
        decided_at=decided_at,
        basis=basis,
        facts=facts,
    )
    await add_events(
        session,
        [
            referral_event(p, referral_id=row.id, agency=agency, actor=actor)
            for p in [decided, *events]
        ],
    )
    return ident


def _investigation_record(referral_id: str) -> str:
    return f"{referral_id}/investigation"


async def investigated(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    investigators: frozenset[str],
    person: str | None,
) -> Referral:
    """The referral, for a law-enforcement or prosecutor agency that submitted it or was sent
    it; anyone else gets NotFound."""
    found = await visible(
        session,
        referral_id=referral_id,
        agency=agency,
        as_submitter=True,
        as_recipient=True,
        person=person,
    )
    if agency not in investigators:
        raise NotFound("No such referral.")
    return found.row


async def record_investigation(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    investigators: frozenset[str],
    opened: bool,
    on: date,
    number: str | None,
    vault: Vault,
    person: str | None = None,
    actor: str | None = None,
) -> Investigation:
    """A law-enforcement agency (`investigators`) that was sent the referral, or submitted it,
    records whether a pre-trial investigation was opened (or refused). The number is sealed
    like the identity and never leaves intake but to `full` readers."""
    row = await investigated(
        session, referral_id=referral_id, agency=agency, investigators=investigators, person=person
    )
    if row.status == "withdrawn":
        raise Conflict("The referral was withdrawn.")
    if on > datetime.now(UTC).date() + timedelta(days=1):
        raise UnprocessableContent(
            "`date` cannot be in the future.",
            errors=[{"path": "date", "type": "value_error", "message": "in the future"}],
        )
    sealed = vault.seal({"number": number}, record_id=_investigation_record(referral_id))
    inv = await session.get(Investigation, referral_id)
    if inv is None:
        inv = Investigation(
            referral_id=referral_id,
            agency=agency,
            opened=opened,
            date=on,
            sealed=sealed.ciphertext,
            wrapped_key=sealed.wrapped_key,
            master_key_id=sealed.master_key_id,
        )
    inv.agency, inv.opened, inv.date = agency, opened, on
    inv.sealed, inv.wrapped_key = sealed.ciphertext, sealed.wrapped_key
    inv.master_key_id = sealed.master_key_id
    inv.recorded_by = actor
    inv.recorded_at = utcnow()
    session.add(inv)
    payload = InvestigationRecorded(
        referral_id=referral_id,
        reference=row.reference,
        agency=agency,
        opened=opened,
        date=on,
    )
    await add_event(
        session, referral_event(payload, referral_id=referral_id, agency=agency, actor=actor)
    )
    return inv


async def sweep_identification(session: AsyncSession, *, now: datetime, limit: int = 100) -> int:
    """The identification clocks: announce each missed reasonable-grounds deadline and each
    ended reflection period once. Each is claimed by a conditional UPDATE before its event is
    staged, so several intake instances never announce one twice. Returns how many."""

    def overdue(ident: Identification, row: Referral) -> Any:
        return IdentificationOverdue(
            referral_id=row.id,
            reference=row.reference,
            authority=ident.authority,
            due=ident.reasonable_grounds_due,
        )

    def reflection_ended(ident: Identification, row: Referral) -> Any:
        assert ident.reflection_ends is not None
        return ReflectionEnded(
            referral_id=row.id, reference=row.reference, ended_at=ident.reflection_ends
        )

    clocks = (
        (
            "overdue_at",
            [
                col(Identification.status) == VictimStatus.POTENTIAL.value,
                col(Identification.reasonable_grounds_due) <= now,
                col(Referral.status) != "withdrawn",
            ],
            overdue,
        ),
        ("reflection_ended_at", [col(Identification.reflection_ends) <= now], reflection_ended),
    )
    announced = 0
    for stamp, due, announcement in clocks:
        unannounced = col(getattr(Identification, stamp)).is_(None)
        found = await session.exec(
            select(Identification, Referral)
            .join(Referral, col(Referral.id) == col(Identification.referral_id))
            .where(unannounced, *due)
            .limit(limit)
        )
        for ident, row in list(found):
            claim = (
                update(Identification)
                .where(col(Identification.referral_id) == ident.referral_id, unannounced)
                .values({stamp: now})
            )
            if (await session.exec(claim)).rowcount != 1:
                continue
            payload = announcement(ident, row)
            await add_event(
                session, referral_event(payload, referral_id=row.id, agency=ident.authority)
            )
            announced += 1
    return announced
