"""Retention and erasure (issue 23): legal holds, erasure requests and their approval (two-person
rule), crypto-shredding, the erasure ledger's replay, the retention sweep and subject access.
Plain functions; the caller owns the transaction (as in service.py).

Erasure is crypto-shredding: the referral's wrapped data keys are deleted with the ciphertexts
they open (the referral's and its investigation's), so no master key, present or future, opens
anything of it again; every other personal field intake holds in clear is emptied, and the rows
that only describe it (recipients, identification, recusals, holds) are deleted. What is left:
id, reference, kind, status `erased`, the basis code and the time. The ledger
(services/common/erasure.py) is written before the shredding commits, so a database restored
from an older backup is shredded again on start.
"""

import html
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import case, func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events import ErasureRequested, ReferralErased, ReferralHoldChanged
from contracts.vocabulary import Disclosure, ErasureBasis
from services.common.access import admin_changed
from services.common.crypto import Vault
from services.common.db import is_sqlite, truncate_wal
from services.common.erasure import Erasure, ErasureLedger
from services.common.errors import Conflict, Gone, NotFound, ServiceUnavailable
from services.common.outbox import add_event
from services.common.pagination import Key, Page, paginate
from services.common.retention import Outcome, Retention, majority_on
from services.intake import service
from services.intake.models import (
    ErasureRequest,
    IdempotencyRecord,
    Identification,
    Investigation,
    LegalHold,
    Recipient,
    Recusal,
    Referral,
)
from services.intake.settings import IntakeSettings

log = logging.getLogger(__name__)
ERASED = "erased"
# A recipient whose part has ended: done, refused, or handed on by an escalation.
ENDED = ("completed", "declined", "escalated")


# Legal holds


async def holds(session: AsyncSession, referral_id: str) -> list[LegalHold]:
    rows = await session.exec(
        select(LegalHold)
        .where(col(LegalHold.referral_id) == referral_id)
        .order_by(col(LegalHold.placed_at), col(LegalHold.agency))
    )
    return list(rows)


def _refuse_if_held(held: list[LegalHold]) -> None:
    if held:
        agencies = ", ".join(h.agency for h in held)
        raise Conflict(
            f"A legal hold stands on this referral (placed by {agencies}): nothing is erased "
            "until it is lifted.",
            holds=[h.agency for h in held],
        )


async def place_hold(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    investigators: frozenset[str],
    person: str | None = None,
    actor: str,
) -> Referral:
    """Place the agency's legal hold while an investigation is open (Conflict otherwise).
    Placing it again changes nothing."""
    row = await service.investigated(
        session, referral_id=referral_id, agency=agency, investigators=investigators, person=person
    )
    inv = await session.get(Investigation, referral_id)
    if inv is None or not inv.opened:
        raise Conflict("No investigation is open on this referral: a legal hold needs one.")
    if await session.get(LegalHold, (referral_id, agency)) is not None:
        return row
    session.add(LegalHold(referral_id=referral_id, agency=agency, placed_by=actor))
    await _hold_changed(session, row=row, agency=agency, actor=actor, held=True)
    await session.flush()  # the caller lists the holds next
    return row


async def lift_hold(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    investigators: frozenset[str],
    person: str | None = None,
    actor: str,
) -> None:
    """Lift the hold the caller's agency placed (another agency's is not its to lift)."""
    row = await service.investigated(
        session, referral_id=referral_id, agency=agency, investigators=investigators, person=person
    )
    hold = await session.get(LegalHold, (referral_id, agency))
    if hold is None:
        raise Conflict("Your agency has placed no legal hold on this referral.")
    await session.delete(hold)
    await _hold_changed(session, row=row, agency=agency, actor=actor, held=False)


async def _hold_changed(
    session: AsyncSession, *, row: Referral, agency: str, actor: str, held: bool
) -> None:
    payload = ReferralHoldChanged(
        referral_id=row.id, reference=row.reference, agency=agency, held=held
    )
    await add_event(
        session, service.referral_event(payload, referral_id=row.id, agency=agency, actor=actor)
    )


# Erasure on request: the national coordinator's supervisor asks, a `dpo` approves.


async def _erasable(session: AsyncSession, referral_id: str) -> Referral:
    row = await session.get(Referral, referral_id)
    if row is None:
        raise NotFound("No such referral.")
    if row.status == ERASED:
        raise Conflict("The referral was already erased.")
    return row


async def request_erasure(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    coordinators: frozenset[str],
    basis: ErasureBasis,
    actor: str,
) -> ErasureRequest:
    """Ask for an erasure (the caller holds the supervisor role; its agency must be the
    national coordinator, anyone else gets NotFound). Refused under a legal hold, and when
    another basis is pending; the same request again is answered with the pending one."""
    if agency not in coordinators:
        raise NotFound("No such referral.")
    row = await _erasable(session, referral_id)
    _refuse_if_held(await holds(session, referral_id))
    pending = await session.get(ErasureRequest, referral_id)
    if pending is not None:
        if pending.basis != basis.value:
            raise Conflict(
                f"An erasure on the basis `{pending.basis}` is already pending: cancel it first."
            )
        return pending
    pending = ErasureRequest(
        referral_id=referral_id,
        basis=basis.value,
        requested_by=agency,
        requested_by_actor=actor,
    )
    session.add(pending)
    payload = ErasureRequested(
        referral_id=row.id, reference=row.reference, basis=basis, requested_by=agency
    )
    await add_event(
        session, service.referral_event(payload, referral_id=row.id, agency=agency, actor=actor)
    )
    return pending


@dataclass(frozen=True, slots=True)
class Pending:
    request: ErasureRequest
    reference: str
    held: bool


async def pending_erasures(
    session: AsyncSession, *, referral_id: str | None, cursor: Key | None, limit: int
) -> Page[Pending]:
    """Erasures waiting for a `dpo`, by referral id (UUIDv7: the oldest referral first).
    `referral_id`: that referral's only."""
    held = select(col(LegalHold.referral_id)).distinct()
    query = select(
        ErasureRequest, col(Referral.reference), col(ErasureRequest.referral_id).in_(held)
    ).join(Referral, col(Referral.id) == col(ErasureRequest.referral_id))
    if referral_id:
        query = query.where(col(ErasureRequest.referral_id) == referral_id)
    page = await paginate(
        session,
        query,
        order=(col(ErasureRequest.referral_id),),
        key=lambda row: (row[0].referral_id,),
        cursor=cursor,
        limit=limit,
    )
    found = [Pending(req, reference, bool(on_hold)) for req, reference, on_hold in page.items]
    return Page(found, page.next_cursor)


async def visible_holds(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    investigators: frozenset[str],
    coordinators: frozenset[str],
    may_request_erasure: bool,
    person: str | None,
) -> tuple[Referral, list[LegalHold]]:
    """The holds on a referral, for whoever may place one (a law-enforcement or prosecutor
    agency that submitted it or was sent it) or ask for its erasure (the national
    coordinator's supervisor, who may ask about any referral); anyone else gets NotFound."""
    if may_request_erasure and agency in coordinators:
        found = await session.get(Referral, referral_id)
        if found is None or found.status == ERASED:
            raise NotFound("No such referral.")
        row = found
    else:
        row = await service.investigated(
            session,
            referral_id=referral_id,
            agency=agency,
            investigators=investigators,
            person=person,
        )
    return row, await holds(session, referral_id)


async def pending_erasure(session: AsyncSession, referral_id: str) -> ErasureRequest:
    await _erasable(session, referral_id)
    pending = await session.get(ErasureRequest, referral_id)
    if pending is None:
        raise Conflict("No erasure of this referral is pending.")
    return pending


async def cancel_erasure(
    session: AsyncSession, *, referral_id: str, agency: str, actor: str
) -> ErasureRequest:
    """Withdraw a pending request (the requester's side) or refuse it (the dpo's)."""
    pending = await pending_erasure(session, referral_id)
    await session.delete(pending)
    await admin_changed(
        session,
        source=service.SERVICE,
        action="erasure.cancelled",
        target_type="referral",
        target_id=referral_id,
        actor=actor,
        details={"basis": pending.basis},
        subject=referral_id,
        agency=agency,
        event_actor=actor,
    )
    return pending


async def approve_erasure(
    session: AsyncSession,
    *,
    referral_id: str,
    agency: str,
    actor: str,
    ledger: ErasureLedger,
    now: datetime,
) -> Referral:
    """The second person approves: the referral is shredded at once. Refused under a legal
    hold (placed since the request), and to the person who asked."""
    pending = await pending_erasure(session, referral_id)
    if pending.requested_by_actor == actor:
        raise Conflict("The erasure must be approved by someone other than who requested it.")
    _refuse_if_held(await holds(session, referral_id))
    row = await session.get(Referral, referral_id)
    assert row is not None
    await shred(
        session,
        row=row,
        basis=ErasureBasis(pending.basis),
        erased_at=now,
        ledger=ledger,
        agency=agency,
        actor=actor,
    )
    return row


# Crypto-shredding


async def shred(
    session: AsyncSession,
    *,
    row: Referral,
    basis: ErasureBasis,
    erased_at: datetime,
    ledger: ErasureLedger | None,
    agency: str,
    actor: str,
) -> bool:
    """Destroy the referral's data in the caller's transaction and stage `referral.erased`.
    The row is claimed by a conditional UPDATE first (so two instances never both erase it),
    then the ledger entry is synced to disk (`ledger`; None when replaying it), before the
    caller commits. False when it was already erased."""
    # SQLite runs with `secure_delete` (services.common.db): what is overwritten or deleted here
    # is zeroed in the file, not left in free space where the old wrapped key would still open
    # the old ciphertext; the caller truncates the write-ahead log after the commit.
    claim = (
        update(Referral)
        .where(col(Referral.id) == row.id, col(Referral.status) != ERASED)
        .values(status=ERASED)
    )
    if (await session.exec(claim)).rowcount != 1:
        return False
    if ledger is not None:
        ledger.record(referral_id=row.id, basis=basis.value, erased_at=erased_at)
    referral_id = row.id
    await session.exec(
        update(Referral)
        .where(col(Referral.id) == referral_id)
        .values(
            status=ERASED,
            erasure_basis=basis.value,
            erased_at=erased_at,
            # The data key and what it opens: gone, so no master key opens anything of it.
            sealed=b"",
            wrapped_key=b"",
            master_key_id="",
            # Everything else held in clear about the victim and the case.
            facts={},
            profile={},
            consent=None,
            external_ref=None,
            submitted_by="",
            submitted_by_client="",
            urgency="",
            region="",
            created_at=erased_at,
            majority_on=None,
            withdrawn_at=None,
        )
    )
    for table in (
        Investigation,  # its sealed number and wrapped key
        Identification,  # the victim's status, decisions and who decided
        Recipient,
        Recusal,
        LegalHold,
        ErasureRequest,
    ):
        await session.exec(delete(table).where(col(table.referral_id) == referral_id))
    # The key's record stays (a replayed request must not submit the referral again), without
    # the hash of the body, which held the identity.
    await session.exec(
        update(IdempotencyRecord)
        .where(col(IdempotencyRecord.referral_id) == referral_id)
        .values(body_hash="")
    )
    payload = ReferralErased(referral_id=referral_id, basis=basis)
    await add_event(
        session,
        service.referral_event(payload, referral_id=referral_id, agency=agency, actor=actor),
    )
    await session.refresh(row)  # the bulk UPDATEs bypassed the loaded object
    return True


async def settle(engine: AsyncEngine) -> None:
    """After a shredding commit, on SQLite: fold the write-ahead log into the database file and
    truncate it, so the old pages (with the old keys) leave the `-wal` file too."""
    if is_sqlite(engine) and not await truncate_wal(engine):
        log.warning("write-ahead log not truncated after an erasure (a reader was busy)")


async def shred_again(session: AsyncSession, entry: Erasure, *, agency: str) -> bool:
    """Replaying the ledger: shred a referral the ledger says was erased if its data is present
    (a database restored from a backup older than the erasure, or a crash between the ledger
    entry and the commit). True when it was."""
    row = await session.get(Referral, entry.referral_id)
    if row is None or row.status == ERASED:
        return False
    return await shred(
        session,
        row=row,
        basis=ErasureBasis(entry.basis),
        erased_at=entry.erased_at,
        ledger=None,
        agency=agency,
        actor=agency,
    )


# The retention schedule


@dataclass(frozen=True, slots=True)
class Due:
    referral_id: str
    reference: str
    outcome: Outcome
    reached: datetime  # when the referral reached the outcome
    due: datetime
    held: bool
    minor: bool


async def retention_due(
    session: AsyncSession, *, retention: Retention, until: datetime, limit: int = 1000
) -> list[Due]:
    """Referrals whose retention period ends by `until`, soonest first. When several outcomes
    apply (withdrawn after a negative decision, say), the latest due date decides: nothing is
    erased while any of its periods runs."""
    ident = (
        select(
            col(Identification.referral_id),
            col(Identification.status),
            col(Identification.decided_at),
        )
        .where(
            col(Identification.status).in_(
                [Outcome.NO_REASONABLE_GROUNDS.value, Outcome.NOT_CONFIRMED.value]
            )
        )
        .subquery()
    )
    ended = func.sum(case((col(Recipient.status).in_(ENDED), 1), else_=0))
    closing = (
        select(
            col(Recipient.referral_id),
            func.max(col(Recipient.updated_at)).label("closed_at"),
        )
        .group_by(col(Recipient.referral_id))
        .having(func.count() == ended)
        .subquery()
    )
    query = (
        select(
            Referral,
            ident.c.status,
            ident.c.decided_at,
            closing.c.closed_at,
        )
        .outerjoin(ident, ident.c.referral_id == col(Referral.id))
        .outerjoin(closing, closing.c.referral_id == col(Referral.id))
        .where(col(Referral.status) != ERASED)
        .where(
            (col(Referral.status) == "withdrawn")
            | ident.c.status.is_not(None)
            | closing.c.closed_at.is_not(None)
        )
    )
    held = set((await session.exec(select(col(LegalHold.referral_id)).distinct())).all())
    found: list[Due] = []
    for row, decision, decided_at, closed_at in await session.exec(query):
        reached: list[tuple[Outcome, datetime]] = []
        if row.status == "withdrawn":
            reached.append((Outcome.WITHDRAWN, row.withdrawn_at or row.created_at))
        if decision is not None and decided_at is not None:
            reached.append((Outcome(decision), _aware(decided_at)))
        if closed_at is not None:
            reached.append((Outcome.CLOSED, _aware(closed_at)))
        majority = row.majority_on
        minor = bool(row.facts.get("minor"))
        if minor and majority is None:  # referred before majority was recorded
            majority = majority_on(
                born=None, age=row.profile.get("age"), recorded=row.created_at.date(), minor=True
            )
        outcome, at, due = max(
            (
                (o, when, retention.due(outcome=o, reached=when, majority=majority))
                for o, when in reached
            ),
            key=lambda x: x[2],
        )
        if due <= until:
            found.append(Due(row.id, row.reference, outcome, at, due, row.id in held, minor))
    found.sort(key=lambda d: (d.due, d.referral_id))
    return found[:limit]


def _aware(value: datetime) -> datetime:
    """A time from an aggregate or subquery column (SQLite returns it naive, or as text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def sweep_retention(
    session: AsyncSession,
    *,
    retention: Retention,
    now: datetime,
    ledger: ErasureLedger,
    agency: str,
    limit: int = 100,
) -> list[str]:
    """Erase (basis `retention_expired`, no approval: the schedule is the decision) up to
    `limit` referrals past their retention period and under no legal hold. Returns their ids."""
    erased = []
    for due in await retention_due(session, retention=retention, until=now):
        if due.held:
            continue
        row = await session.get(Referral, due.referral_id)
        if row is None:
            continue
        if await shred(
            session,
            row=row,
            basis=ErasureBasis.RETENTION_EXPIRED,
            erased_at=now,
            ledger=ledger,
            agency=agency,
            actor=agency,
        ):
            erased.append(row.id)
        if len(erased) >= limit:
            break
    return erased


# Subject access


async def subject_access(
    session: AsyncSession, *, referral_id: str, vault: Vault
) -> dict[str, Any]:
    """Everything intake holds on one referral, at `full`, with its recipients (their
    disclosure levels and statuses), holds and any pending erasure. An erased referral: Gone."""
    row = await session.get(Referral, referral_id)
    if row is None:
        raise NotFound("No such referral.")
    if row.status == ERASED:
        assert row.erased_at is not None
        raise Gone(
            "The referral was erased: intake holds nothing of it.",
            referral_status=ERASED,
            basis=row.erasure_basis,
            erased_at=row.erased_at.isoformat(),
        )
    data = service.render(row, Disclosure.FULL, vault, viewer=row.submitted_by, submitter=True)
    ident, inv = await service.progress(session, referral_id)
    if row.kind != "tip":
        data["identification"] = service.identification_view(ident)
    data["investigation"] = service.investigation_view(inv, vault, disclosure=Disclosure.FULL)
    recipients = await session.exec(
        select(Recipient)
        .where(col(Recipient.referral_id) == referral_id)
        .order_by(col(Recipient.agency))
    )
    pending = await session.get(ErasureRequest, referral_id)
    return {
        "data": data,
        "recipients": [
            {
                "agency": r.agency,
                "disclosure": service.effective_disclosure(r, row.consent).value,
                "status": r.status,
                "rule": r.rule,
            }
            for r in recipients
        ],
        "holds": [
            {"agency": h.agency, "placed_at": h.placed_at.isoformat()}
            for h in await holds(session, referral_id)
        ],
        "erasure_requested": (
            {
                "basis": pending.basis,
                "requested_at": pending.requested_at.isoformat(),
                "requested_by": pending.requested_by,
                "requested_by_actor": pending.requested_by_actor,
            }
            if pending
            else None
        ),
    }


def clock(settings: IntakeSettings) -> datetime:
    """The retention clock: now, moved by `retention_clock_offset_days` (drills and tests)."""
    return datetime.now(UTC) + timedelta(days=settings.retention_clock_offset_days)


# Subject access


async def access_records(
    http: httpx.AsyncClient, *, referral_id: str, authorization: str, page: int = 500
) -> list[dict[str, Any]]:
    """Every access to the referral the audit service recorded (allowed or refused), oldest
    first, read over HTTP with the caller's own token (`GET /v1/audit/referrals/{id}/accesses`,
    the `dpo`'s). Without them the document would be incomplete: ServiceUnavailable instead."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": page}
        if cursor:
            params["cursor"] = cursor
        try:
            r = await http.get(
                f"/v1/audit/referrals/{referral_id}/accesses",
                params=params,
                headers={"Authorization": authorization},
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                "The audit service could not be reached: the accesses cannot be listed."
            ) from exc
        if r.status_code != 200:
            raise ServiceUnavailable(
                f"The audit service answered {r.status_code}: the accesses cannot be listed."
            )
        answer = r.json()
        for item in answer.get("items", []):
            found.append(
                {
                    "time": item.get("time"),
                    "outcome": item.get("outcome"),
                    "agency": item.get("agency"),
                    "actor": item.get("actor"),
                    "action": item.get("action"),
                    "disclosure": item.get("disclosure"),
                    # Audit keeps {"sha256", "length"} of the stated purpose, not its text.
                    "purpose": item.get("purpose"),
                }
            )
        cursor = answer.get("next_cursor")
        if not cursor:
            return found


def subject_access_document(
    held: dict[str, Any],
    *,
    accesses: list[dict[str, Any]],
    produced_by: str,
    produced_at: datetime,
) -> dict[str, Any]:
    data = held["data"]
    return {
        "document": "subject_access",
        "referral_id": data["id"],
        "reference": data["reference"],
        "produced_at": produced_at.isoformat(),
        "produced_by": produced_by,
        "data": data,
        "recipients": held["recipients"],
        "holds": held["holds"],
        "erasure_requested": held["erasure_requested"],
        "accesses": accesses,
    }


# What each recorded action did, in words a victim's lawyer reads (the audit log names the
# endpoint); an action not listed here is shown as recorded.
ACTION_WORDS = {
    "referral.read": "read the referral",
    "subject_access.read": "produced a subject-access document",
    "GET /v1/referrals/{referral_id}": "read the referral",
    "GET /v1/referrals/{referral_id}/status": "read who was sent it and what they did",
    "GET /v1/referrals/{referral_id}/hold": "read its legal holds",
    "GET /v1/referrals/{referral_id}/subject-access": "produced this subject-access document",
    "PUT /v1/referrals/{referral_id}/consent": "recorded the victim's consent",
    "PUT /v1/referrals/{referral_id}/safety": "recorded a safety assessment",
    "PUT /v1/referrals/{referral_id}/implicated": "named agencies implicated",
    "POST /v1/referrals/{referral_id}/recusal": "stepped away from the case",
    "POST /v1/referrals/{referral_id}/withdraw": "withdrew the referral",
    "POST /v1/referrals/{referral_id}/identification": "recorded an identification decision",
    "POST /v1/referrals/{referral_id}/investigation": "recorded an investigation",
    "POST /v1/referrals/{referral_id}/hold": "placed a legal hold",
    "DELETE /v1/referrals/{referral_id}/hold": "lifted a legal hold",
    "POST /v1/referrals/{referral_id}/erasure": "asked for erasure",
    "DELETE /v1/referrals/{referral_id}/erasure": "withdrew or refused the erasure request",
    "POST /v1/referrals/{referral_id}/erasure/approve": "approved erasure",
    "GET /v1/inbox": "saw it in the inbox",
    "GET /v1/deliveries/{delivery_id}": "read the delivery",
    "POST /v1/deliveries/{delivery_id}/acknowledge": "acknowledged the delivery",
    "POST /v1/deliveries/{delivery_id}/accept": "accepted the delivery",
    "POST /v1/deliveries/{delivery_id}/decline": "declined the delivery",
    "POST /v1/deliveries/{delivery_id}/complete": "completed the delivery",
    "GET /v1/routing/referrals/{referral_id}/escalations": "read its escalations",
}


def _label(field: str) -> str:
    """`victim.identity.full_name` becomes `Victim > identity > full name`."""
    parts = [p.replace("_", " ") for p in field.split(".")]
    return " > ".join([parts[0][:1].upper() + parts[0][1:], *parts[1:]]) if parts else field


def _readable_access(item: dict[str, Any]) -> dict[str, Any]:
    action = item.get("action")
    outcome = "refused" if item.get("outcome") == "denied" else item.get("outcome")
    return {**item, "action": ACTION_WORDS.get(str(action), action), "outcome": outcome}


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted field, text) pairs of a nested document, for a printable table."""
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, item in value.items():
            rows += _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        rows = []
        for i, item in enumerate(value):
            rows += _flatten(item, f"{prefix}[{i}]")
        return rows
    if isinstance(value, list):
        return [(prefix, ", ".join(str(v) for v in value) or "none")]
    if isinstance(value, bool):
        return [(prefix, "yes" if value else "no")]
    return [(prefix, "none" if value is None else str(value))]


ACCESS_COLUMNS = ("time", "outcome", "agency", "actor", "action", "disclosure", "purpose")


def _printable(value: Any) -> str:
    """A cell's text. The audit log keeps a purpose as its fingerprint only (free text might
    name someone): shown so that a copy of the stated purpose can be matched against it."""
    if value is None:
        return "none"
    if isinstance(value, dict) and "sha256" in value:
        return f"sha256:{value['sha256']} ({value.get('length')} characters)"
    return str(value)


RECIPIENT_COLUMNS = ("agency", "disclosure", "status", "rule")
ERASURE_COLUMNS = ("basis", "requested_at", "requested_by", "requested_by_actor")


def _title(doc: dict[str, Any]) -> str:
    return f"Subject access: referral {doc['reference']}"


def as_markdown(doc: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        return _printable(value).replace("|", "\\|").replace("\n", " ")

    def table(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> list[str]:
        if not rows:
            return ["None."]
        out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
        return out

    lines = [
        f"# {_title(doc)}",
        "",
        f"Referral id: {doc['referral_id']}  ",
        f"Produced at {doc['produced_at']} by {doc['produced_by']} (data protection officer).",
        "",
        "## Data held",
        "",
        "| field | value |",
        "|---|---|",
        *(f"| {cell(_label(k))} | {cell(v)} |" for k, v in _flatten(doc["data"])),
        "",
        "## Recipients and their disclosure levels",
        "",
        *table(RECIPIENT_COLUMNS, doc["recipients"]),
        "",
        "## Legal holds",
        "",
        *table(("agency", "placed_at"), doc["holds"]),
        "",
        "## Erasure requested",
        "",
        *table(ERASURE_COLUMNS, [doc["erasure_requested"]] if doc["erasure_requested"] else []),
        "",
        "## Accesses",
        "",
        *table(ACCESS_COLUMNS, [_readable_access(a) for a in doc["accesses"]]),
        "",
    ]
    return "\n".join(lines)


def as_html(doc: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        return html.escape(_printable(value))

    def table(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "<p>None.</p>"
        head = "".join(f'<th scope="col">{cell(c)}</th>' for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    erasure = [doc["erasure_requested"]] if doc["erasure_requested"] else []
    accesses = [_readable_access(a) for a in doc["accesses"]]
    data = "".join(
        f'<tr><th scope="row">{cell(_label(k))}</th><td>{cell(v)}</td></tr>'
        for k, v in _flatten(doc["data"])
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{cell(_title(doc))}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;width:100%}th,td{border:1px solid #999;"
        "padding:.25em .5em;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>{cell(_title(doc))}</h1>"
        f"<p>Referral id: {cell(doc['referral_id'])}<br>Produced at {cell(doc['produced_at'])} "
        f"by {cell(doc['produced_by'])} (data protection officer).</p>"
        f"<h2>Data held</h2><table><tbody>{data}</tbody></table>"
        "<h2>Recipients and their disclosure levels</h2>"
        f"{table(RECIPIENT_COLUMNS, doc['recipients'])}"
        f"<h2>Legal holds</h2>{table(('agency', 'placed_at'), doc['holds'])}"
        f"<h2>Erasure requested</h2>{table(ERASURE_COLUMNS, erasure)}"
        f"<h2>Accesses</h2>{table(ACCESS_COLUMNS, accesses)}"
        "</body></html>"
    )
