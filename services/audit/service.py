"""The audit log. Plain functions; the caller owns the transaction.

`append` adds an event to the chain under the head row's lock, so several audit instances (or
partitions) append one at a time and the chain stays a single line.
"""

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import AccessGranted
from services.audit import chain
from services.audit.models import AuditCheckpoint, AuditHead, AuditKey, AuditRecord
from services.common.crypto import Sealed, Vault
from services.common.db import insert_ignore
from services.common.models import utcnow

SERVICE = "audit"

# Free text people type (a decline reason, a purpose) might name someone: the audit log keeps
# its fingerprint and length, enough to match it against a copy, never the text.
FREE_TEXT = {
    "referral.declined": ("reason",),
    "access.granted": ("purpose",),
    "access.denied": ("purpose",),
}
OUTCOME = {"access.granted": "granted", "access.denied": "denied", "auth.failed": "denied"}


def stamp(moment: datetime) -> str:
    """Fixed-width UTC time, so string order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sanitise(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    clean = dict(data)
    for name in FREE_TEXT.get(event_type, ()):
        value = clean.get(name)
        if isinstance(value, str):
            digest = hashlib.sha256(value.encode()).hexdigest()
            clean[name] = {"sha256": digest, "length": len(value)}
    return clean


def _actor(event: CloudEvent) -> str | None:
    if event.actor:
        return event.actor
    data = event.data or {}
    for name in ("actor", "client_id"):
        value = data.get(name)
        if isinstance(value, str):
            return value
    return None


async def head(session: AsyncSession, *, lock: bool = False) -> AuditHead:
    row = await session.get(AuditHead, 1, with_for_update=lock)
    if row is None:
        # The first append and the checkpointer may both find no head on a new database: an
        # insert that yields to the other's (a plain insert failed with a duplicate key).
        dialect = session.get_bind().dialect.name
        await session.exec(
            insert_ignore(dialect, AuditHead).values(id=1, sequence=0, hash=chain.GENESIS)
        )
        row = await session.get(AuditHead, 1, with_for_update=lock, populate_existing=True)
        assert row is not None
    return row


async def append(
    session: AsyncSession, *, event: CloudEvent, topic: str, partition: int, offset: int
) -> AuditRecord:
    """Add one event to the chain (idempotency: the caller's processed-event claim, and the
    unique event id as a backstop)."""
    top = await head(session, lock=True)
    values = (
        top.sequence + 1,
        event.id,
        event.type,
        stamp(event.time),
        event.source,
        event.agency,
        _actor(event),
        event.subject,
        OUTCOME.get(event.type),
        topic,
        partition,
        offset,
        orjson.dumps(sanitise(event.type, event.data or {}), option=orjson.OPT_SORT_KEYS).decode(),
        top.hash,
    )
    digest = chain.record_hash(values)
    fields: dict[str, Any] = dict(zip(chain.FIELDS, values, strict=True))
    record = AuditRecord(
        **fields, hash=digest, source_sequence=event.sequence, received_at=utcnow()
    )
    session.add(record)
    top.sequence, top.hash = record.sequence, digest
    session.add(top)
    return record


# Reading


def as_dict(r: AuditRecord) -> dict[str, Any]:
    out = {f: getattr(r, f) for f in chain.FIELDS}
    out["payload"] = orjson.loads(r.payload)
    out["hash"] = r.hash
    return out


async def events(
    session: AsyncSession,
    *,
    referral: str | None = None,
    reference: str | None = None,
    actor: str | None = None,
    agency: str | None = None,
    types: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[AuditRecord]:
    query = select(AuditRecord).where(col(AuditRecord.sequence) > after)
    if referral:
        query = query.where(AuditRecord.subject == referral)
    if reference:
        # Only the submission names the reference; the API's pattern keeps LIKE's wildcards out.
        query = query.where(
            AuditRecord.type == "referral.submitted",
            col(AuditRecord.payload).like(f'%"reference":"{reference}"%'),
        )
    if actor:
        query = query.where(AuditRecord.client_id == actor)
    if agency:
        query = query.where(AuditRecord.agency == agency)
    if types:
        query = query.where(col(AuditRecord.type).in_(types))
    if since:
        query = query.where(col(AuditRecord.time) >= stamp(since))
    if until:
        query = query.where(col(AuditRecord.time) < stamp(until))
    rows = await session.exec(query.order_by(col(AuditRecord.sequence)).limit(limit))
    return list(rows)


_parse = chain.parse_stamp


# What a timeline shows of each identification and investigation step (never a number).
IDENTIFICATION_STEPS: dict[str, tuple[str, ...]] = {
    "referral.identification_decided": ("decision", "previous", "decided_at", "basis"),
    "referral.reflection_started": ("started_at", "ends_at"),
    "referral.reflection_ended": ("ended_at",),
    "referral.identification_overdue": ("authority", "due"),
    "referral.investigation_recorded": ("opened", "date"),
}


def _step(r: AuditRecord) -> dict[str, Any]:
    payload = orjson.loads(r.payload)
    step: dict[str, Any] = {
        "sequence": r.sequence,
        "type": r.type,
        "time": r.time,
        "agency": r.agency,
        "actor": r.client_id or r.source,
        "source": r.source,
    }
    if r.type == "referral.routed":
        step["reason"] = payload["reason"]
        step["policy_version"] = payload["policy_version"]
        step["recipients"] = [
            {k: x[k] for k in ("agency", "disclosure", "rule", "deadline")}
            for x in payload["recipients"]
        ]
        if payload.get("removed"):
            step["removed"] = payload["removed"]  # named implicated: the delivery taken away
    elif r.type == "admin.changed":
        step["action"] = payload.get("action")  # e.g. `referral.recused`
    elif r.type in IDENTIFICATION_STEPS:  # decisions, clocks, investigations: no identity
        for name in IDENTIFICATION_STEPS[r.type]:
            step[name] = payload.get(name)
    elif r.type.startswith("access."):
        step["outcome"] = r.outcome
        step["action"] = payload.get("action")
        step["agency"] = payload.get("agency") or r.agency
        step["disclosure"] = payload.get("disclosure")
    elif "delivery_id" in payload:
        step["delivery_id"] = payload["delivery_id"]
        step["agency"] = payload.get("agency") or r.agency
        for name in ("channel", "deadline", "rule"):
            if name in payload:
                step[name] = payload[name]
    return step


async def timeline(session: AsyncSession, *, referral_id: str) -> list[dict[str, Any]]:
    """Every recorded step of a referral in time order, with the time since the one before and
    since the first. Time, not chain order: events of different services reach audit in
    whatever order their relays and partitions deliver them (each step keeps its sequence)."""
    rows = await session.exec(
        select(AuditRecord)
        .where(AuditRecord.subject == referral_id)
        .order_by(col(AuditRecord.time), col(AuditRecord.sequence))
    )
    steps = []
    first = previous = None
    for r in rows:
        moment = _parse(r.time)
        first = first or moment
        step = _step(r)
        step["since_previous_ms"] = (
            int((moment - previous).total_seconds() * 1000) if previous else 0
        )
        step["since_start_ms"] = int((moment - first).total_seconds() * 1000)
        previous = moment
        steps.append(step)
    return steps


# Verification and checkpoints


COLUMNS = ", ".join(f'"{f}"' for f in (*chain.FIELDS, "hash"))
NUMBERED = COLUMNS + ', "source_sequence", "received_at"'


def _select_rows(columns: str) -> str:
    return (
        f"SELECT {columns} FROM audit_record "  # noqa: S608 (a constant column list)
        "WHERE sequence > ? AND sequence <= ? ORDER BY sequence LIMIT ?"
    )


def _select_range(columns: str) -> str:
    return (
        f"SELECT {columns} FROM audit_record "  # noqa: S608 (a constant column list)
        "WHERE sequence BETWEEN $1 AND $2 ORDER BY sequence"
    )


def _aware(value: datetime | str) -> datetime:
    """A `received_at` as the driver returns it (SQLite: text) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def rows(
    session: AsyncSession, *, batch: int = 20_000, upto: int | None = None, numbers: bool = False
) -> AsyncGenerator[list[Sequence[Any]], None]:
    """Every record as a plain tuple (FIELDS..., hash), in sequence order, in batches; with
    `numbers`, followed by the source's event number and the arrival time.

    Read through the driver itself, not SQLAlchemy's result rows: verification is meant to run
    at the speed of hashing. On PostgreSQL the next batch is fetched on a second connection
    while the caller hashes this one: a fetch spends most of its time waiting for the server.
    """
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    if conn.dialect.name != "postgresql":
        query = _select_rows(NUMBERED if numbers else COLUMNS)
        last, end = 0, upto if upto is not None else 2**62
        while True:
            found = list(await raw.execute_fetchall(query, (last, end, batch)))
            if not found:
                return
            yield found
            last = found[-1][0]
    if upto is None:
        upto = int(await raw.fetchval("SELECT coalesce(max(sequence), 0) FROM audit_record"))
    # A small first batch: nothing overlaps the first fetch.
    first = min(batch // 4, upto)
    ranges = [(1, first)] if first else []
    ranges += [(lo, min(lo + batch - 1, upto)) for lo in range(first + 1, upto + 1, batch)]
    if not ranges:
        return
    async with conn.engine.connect() as second, conn.engine.connect() as third:
        drivers = [raw]
        for extra in (second, third):
            driver = (await extra.get_raw_connection()).driver_connection
            assert driver is not None
            drivers.append(driver)

        async def fetch(i: int) -> list[Sequence[Any]]:
            lo, hi = ranges[i]
            # asyncpg Records index and slice like tuples: no conversion per row.
            query = _select_range(NUMBERED if numbers else COLUMNS)
            return list(await drivers[i % len(drivers)].fetch(query, lo, hi))

        # Up to two batches in flight while the caller hashes the one in hand.
        pending = [asyncio.create_task(fetch(i)) for i in range(min(2, len(ranges)))]
        try:
            for i in range(len(ranges)):
                chunk: list[Sequence[Any]] = await pending.pop(0)
                if i + 2 < len(ranges):
                    pending.append(asyncio.create_task(fetch(i + 2)))
                yield chunk
        finally:  # the caller stopped early (a broken chain): no query left running
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


# Gaps in each source's numbers, found by the database (one pass over the index on
# (source, source_sequence)): each record whose number is more than one above the one before.
_GAPS = (
    "SELECT source, previous + 1, source_sequence - 1, received_at FROM ("
    " SELECT source, source_sequence, received_at, coalesce(lag(source_sequence)"
    " OVER (PARTITION BY source ORDER BY source_sequence), 0) AS previous"
    " FROM audit_record WHERE source_sequence IS NOT NULL"
    ") AS numbered WHERE source_sequence > previous + 1 ORDER BY source, source_sequence"
)


async def missing(session: AsyncSession, *, grace: timedelta) -> dict[str, list[list[int]]]:
    """Per source, the ranges of event numbers not held whose next held number arrived more
    than `grace` ago (the same rule as `chain.find_missing`, for exports)."""
    conn = await session.connection()
    found: list[Any] = list(await conn.exec_driver_sql(_GAPS))
    cutoff = utcnow() - grace
    gaps: dict[str, list[list[int]]] = {}
    for source, first, last, received in found:
        if _aware(received) < cutoff:
            gaps.setdefault(source, []).append([int(first), int(last)])
    return gaps


async def verify(
    session: AsyncSession, *, vkey: str, grace: timedelta = timedelta(minutes=3)
) -> dict[str, Any]:
    finding = chain.Finding(True, 0, None, None, chain.GENESIS)
    heads: dict[int, str] = {}
    start, prev = 1, chain.GENESIS
    async with contextlib.aclosing(rows(session)) as batches:
        async for chunk in batches:
            part = chain.verify_records(chunk, start=start, prev=prev)
            finding = chain.Finding(
                part.ok,
                finding.records + part.records,
                part.first_bad_sequence,
                part.problem,
                part.head_hash,
            )
            for row in chunk[: part.records]:
                heads[row[0]] = row[14]
            if not part.ok:
                break
            start, prev = start + part.records, part.head_hash
    notes = [
        c.note
        for c in await session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.id)))
    ]
    checked = chain.check_checkpoints(notes, vkey, _checkpoint_heads(heads, notes), finding)
    gaps = await missing(session, grace=grace)
    return {
        "ok": checked["ok"] and not gaps,
        "records": finding.records,
        "first_bad_sequence": checked["first_bad_sequence"],
        "problem": finding.problem,
        "head_hash": finding.head_hash,
        "checkpoints": checked["checkpoints"],
        "missing": gaps,
    }


def _checkpoint_heads(heads: dict[int, str], notes: list[str]) -> dict[int, str]:
    sizes = {chain._claimed_size(n) for n in notes}
    return {s: h for s, h in heads.items() if s in sizes}


async def signing_key(session: AsyncSession, *, name: str, vault: Vault) -> Ed25519PrivateKey:
    """The checkpoint key, created (and sealed) on first use."""
    row = await session.get(AuditKey, name)
    if row is None:
        key = Ed25519PrivateKey.generate()
        sealed = vault.seal(
            {"private": key.private_bytes_raw().hex()}, record_id=f"audit-key:{name}"
        )
        row = AuditKey(
            name=name,
            public_key=key.public_key().public_bytes_raw(),
            sealed_private=sealed.ciphertext,
            wrapped_key=sealed.wrapped_key,
            master_key_id=sealed.master_key_id,
        )
        session.add(row)
        await session.flush()
        return key
    opened = vault.open(
        Sealed(row.sealed_private, row.wrapped_key, row.master_key_id),
        record_id=f"audit-key:{name}",
    )
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(opened["private"]))


async def checkpoint(
    session: AsyncSession, *, name: str, origin: str, vault: Vault, force: bool = False
) -> AuditCheckpoint | None:
    """Sign the current head; None if nothing was appended since the last checkpoint."""
    key = await signing_key(session, name=name, vault=vault)
    top = await head(session)
    last = (
        await session.exec(
            select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc()).limit(1)
        )
    ).first()
    if top.sequence == 0 or (last is not None and last.size == top.sequence and not force):
        return None
    moment = stamp(utcnow())
    body = chain.checkpoint_body(origin, top.sequence, top.hash, moment)
    note = chain.sign_checkpoint(body, name=name, key=key)
    row = AuditCheckpoint(size=top.sequence, head_hash=top.hash, time=moment, note=note)
    session.add(row)
    return row


async def public_key(session: AsyncSession, *, name: str, vault: Vault) -> str:
    key = await signing_key(session, name=name, vault=vault)
    return chain.verifier_key(name, key.public_key().public_bytes_raw())


def access_event(
    *, action: str, agency: str, client_id: str, resource: str | None, actor: str | None = None
) -> AccessGranted:
    return AccessGranted(
        actor=actor,
        action=action,
        resource_type="audit",
        resource_id=resource,
        agency=agency,
        client_id=client_id,
    )


async def export_lines(session: AsyncSession, *, origin: str, vkey: str) -> AsyncIterator[bytes]:
    """The export as JSON Lines: a header, every record in order, then the checkpoints.

    A consistent cut: the checkpoints as of now and the records up to the head as of now, so
    appends during a long export cannot make a checkpoint look truncated."""
    header = {
        "kind": "header",
        "format": "nrm-audit-export/1",
        "origin": origin,
        "exported_at": stamp(utcnow()),
    }
    yield orjson.dumps({**header, "public_key": vkey}) + b"\n"
    notes = list(await session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.id))))
    upto = (await head(session)).sequence
    names = (*chain.FIELDS, "hash", "source_sequence", "received_at")
    async for chunk in rows(session, upto=upto, numbers=True):
        for row in chunk:
            item = dict(zip(names, row, strict=True))
            if item["received_at"] is not None:
                item["received_at"] = stamp(_aware(item["received_at"]))
            yield orjson.dumps({"kind": "record", **item}) + b"\n"
    for c in notes:
        yield orjson.dumps({"kind": "checkpoint", "size": c.size, "note": c.note}) + b"\n"
