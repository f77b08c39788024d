"""The audit log. Plain functions; the caller owns the transaction.

`append` adds an event to the chain under the head row's lock, so several audit instances (or
partitions) append one at a time and the chain stays a single line. Each record (chain v2)
carries a salted commitment to its payload in the hash; the payload and salt are sealed under
the data key of the record's referral, so `erase` destroys a referral's payloads by deleting one
wrapped key, and the chain still verifies.
"""

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import bindparam, update
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import AccessGranted
from services.audit import chain
from services.audit.models import (
    ChainCheckpoint,
    ChainHead,
    ErasedReferral,
    Record,
    ReferralKey,
    SealingKey,
)
from services.common.crypto import SealError, Vault, open_bytes, seal_bytes
from services.common.db import SessionFactory, insert_ignore, insert_many, transaction
from services.common.erasure import Erasure
from services.common.errors import InternalError
from services.common.models import utcnow
from services.common.tracing import trace_id_of

SERVICE = "audit"

# Free text people type (a decline reason, a purpose) might name someone: the audit log keeps
# its fingerprint and length, enough to match it against a copy, never the text.
FREE_TEXT = {
    "referral.declined": ("reason",),
    "access.granted": ("purpose",),
    "access.denied": ("purpose",),
}
OUTCOME = {"access.granted": "granted", "access.denied": "denied", "auth.failed": "denied"}
ERASED = "referral.erased"
# The key of records with no subject (auth.failed, admin.changed, audit's own queries) and of
# erasure records: nothing erases them one by one, so a key each would only multiply wrapped
# keys. Not a referral id (those are UUIDs), so no erasure can name it.
SHARED_KEY = "-"


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


async def head(session: AsyncSession, *, lock: bool = False) -> ChainHead:
    chained = session.info.get(_CHAIN)
    if chained is not None:
        # Appends of this transaction still in memory (`append`): written first, so the caller
        # (erasure, a checkpoint) sees the chain as it stands; the head is locked already.
        await session.run_sync(_write_chain)
        chained.keys.clear()  # an erasure is about to destroy one
    row = await session.get(
        ChainHead, 1, with_for_update=lock, populate_existing=chained is not None
    )
    if row is None:
        # The first append and the checkpointer may both find no head on a new database: an
        # insert that yields to the other's (a plain insert failed with a duplicate key).
        dialect = session.get_bind().dialect.name
        await session.exec(
            insert_ignore(dialect, ChainHead).values(id=1, sequence=0, hash=chain.GENESIS)
        )
        row = await session.get(ChainHead, 1, with_for_update=lock, populate_existing=True)
        assert row is not None
    return row


# The chain within one transaction: the head is read (and on PostgreSQL locked) by the first
# append, then kept in memory; the records and the head's new value are written once, before
# the transaction commits (or before anything else reads the head: `head`). A batch of events
# then costs one SELECT, one multi-row INSERT and one UPDATE instead of three per event.
_CHAIN = "nrm_audit_chain"


@dataclass
class _Chain:
    sequence: int
    hash: str
    written: int  # the sequence the head row holds
    records: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, bytes | None] = field(default_factory=dict)  # data keys by `_key_ref`


def _write_chain(session: Session) -> None:
    """Write what this transaction appended: its records, then the head row."""
    chained: _Chain | None = session.info.get(_CHAIN)
    if chained is None:
        return
    conn = session.connection()
    if chained.records:
        records, chained.records = chained.records, []
        conn.execute(_INSERT_RECORD, records)
    if chained.written != chained.sequence:
        conn.execute(_UPDATE_HEAD, {"new_sequence": chained.sequence, "new_hash": chained.hash})
        chained.written = chained.sequence


_RECORDS = Record.__table__  # type: ignore[attr-defined]
_HEADS = ChainHead.__table__  # type: ignore[attr-defined]
_INSERT_RECORD = _RECORDS.insert()
_UPDATE_HEAD = (
    _HEADS.update()
    .where(_HEADS.c.id == 1)
    .values(sequence=bindparam("new_sequence"), hash=bindparam("new_hash"))
)


@sa_event.listens_for(Session, "before_commit")
def _write_chain_before_commit(session: Session) -> None:
    _write_chain(session)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_chain(session: Session, transaction: SessionTransaction) -> None:
    # Committed or rolled back: the next transaction reads (and locks) the head again.
    if transaction.parent is None:
        session.info.pop(_CHAIN, None)


async def _chain_of(session: AsyncSession) -> _Chain:
    chained: _Chain | None = session.info.get(_CHAIN)
    if chained is None:
        top = await head(session, lock=True)
        chained = _Chain(top.sequence, top.hash, top.sequence)
        session.info[_CHAIN] = chained
    return chained


def _key_ref(event: CloudEvent) -> str:
    """Whose key seals a record: its subject's (a referral, or a person or client for identity's
    events), so erasing the subject erases every record of it. The erasure record itself says
    only which referral and on what basis, and stays readable: the shared key."""
    if not event.subject or event.type == ERASED:
        return SHARED_KEY
    return event.subject[:64]


def _key_aad(ref: str) -> str:
    return f"audit-referral-key:{ref}"


def _record_aad(sequence: int) -> bytes:
    return f"nrm-audit:{sequence}".encode()  # a sealed payload moved to another record won't open


async def _data_key(session: AsyncSession, *, ref: str, vault: Vault) -> bytes | None:
    """The data key that seals `ref`'s records, made on first use; None once erased."""
    row = await session.get(ReferralKey, ref)
    if row is not None:
        return vault.unwrap(row.wrapped_key, row.master_key_id, record_id=_key_aad(ref))
    if ref != SHARED_KEY and await session.get(ErasedReferral, ref) is not None:
        return None  # an event of an erased referral arriving late: its payload is not kept
    key, wrapped, kid = vault.new_data_key(record_id=_key_aad(ref))
    # Written at the next flush (at the latest the commit); this transaction's later events
    # find the key in `_Chain.keys`.
    session.add(ReferralKey(referral_id=ref, wrapped_key=wrapped, master_key_id=kid))
    return key


async def load_keys(session: AsyncSession, *, events: Sequence[CloudEvent], vault: Vault) -> None:
    """The data keys of a batch's subjects, in two queries rather than one or two per subject
    and batch: into the transaction's chain, where `append` finds them (keys made for new
    subjects are written with the batch)."""
    refs = {_key_ref(e) for e in events}
    if not refs:
        return
    top = await _chain_of(session)
    refs -= top.keys.keys()
    found = await session.exec(select(ReferralKey).where(col(ReferralKey.referral_id).in_(refs)))
    stored: set[str] = set()
    for row in found:
        ref = row.referral_id
        stored.add(ref)
        # A key that does not open is left to `append`, which then fails on that subject's
        # event alone (failing here would fail the batch without saying which event).
        with contextlib.suppress(SealError):
            top.keys[ref] = vault.unwrap(
                row.wrapped_key, row.master_key_id, record_id=_key_aad(ref)
            )
    new = refs - stored
    erased = set(
        await session.exec(
            select(col(ErasedReferral.referral_id)).where(
                col(ErasedReferral.referral_id).in_(new - {SHARED_KEY})
            )
        )
    )
    made: list[dict[str, Any]] = []
    now = utcnow()
    for ref in sorted(new):
        if ref in erased:
            top.keys[ref] = None  # events of an erased referral arriving late: no payload kept
            continue
        key, wrapped, kid = vault.new_data_key(record_id=_key_aad(ref))
        made.append(
            {"referral_id": ref, "wrapped_key": wrapped, "master_key_id": kid, "created_at": now}
        )
        top.keys[ref] = key
    # Plain rows in one executemany: a `ReferralKey` object per new subject cost a third of a
    # batch's time in `bench/audit.py` (SQLModel's __init__ and pydantic's default factory).
    await insert_many(session, ReferralKey, made)


async def append(
    session: AsyncSession,
    *,
    event: CloudEvent,
    topic: str,
    partition: int,
    offset: int,
    vault: Vault,
) -> None:
    """Add one event to the chain (idempotency: the caller's processed-event claim, and the
    unique event id as a backstop). The payload is sealed under its subject's data key, made
    on first use; a subject already erased gets no key again, and its record no payload."""
    top = await _chain_of(session)
    sequence = top.sequence + 1
    data = sanitise(event.type, event.data or {})
    text = chain.canonical(data)
    salt = os.urandom(chain.SALT_BYTES)
    commitment = chain.commitment(salt, text)
    values = (
        sequence,
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
        commitment,
        top.hash,
    )
    digest = chain.record_hash_v2(values)
    fields: dict[str, Any] = dict(zip(chain.FIELDS_V2, values, strict=True))
    ref = _key_ref(event)
    if ref in top.keys:
        key = top.keys[ref]
    else:
        top.keys[ref] = key = await _data_key(session, ref=ref, vault=vault)
    sealed = None
    if key is not None:
        sealed = seal_bytes(key, salt + text.encode(), aad=_record_aad(sequence))
    reference = data.get("reference") if event.type == "referral.submitted" else None
    top.records.append(
        {
            **fields,
            "payload": None,
            "version": 2,
            "hash": digest,
            "sealed": sealed,
            "key_ref": ref,
            "reference": reference if isinstance(reference, str) else None,
            "source_sequence": event.sequence,
            "received_at": utcnow(),
            "trace_id": trace_id_of(event.traceparent),
        }
    )
    top.sequence, top.hash = sequence, digest


# Erasure


async def erase(
    session: AsyncSession, *, referral_id: str, basis: str, erased_at: datetime
) -> bool:
    """Destroy a referral's data key and empty the sealed payloads of its records (the key is
    what matters: without it nothing sealed opens; emptying the columns leaves no ciphertext
    to attack with a key recovered elsewhere). Version 1 records of the referral, written before
    payloads were sealed, drop their plain payload: the chain then vouches for them by their
    links only (chain.py). Idempotent; True if anything was still there to destroy.

    Runs under the head lock, so no append seals under the key while it goes. The ledger entry
    (`ErasureLedger.record`) must be written before: a restored backup replays it."""
    await head(session, lock=True)
    conn = await session.connection()
    if conn.dialect.name == "sqlite":
        # Overwrite deleted content with zeros, so the wrapped key and the ciphertext do not
        # linger in the file's free space (`compact` then empties the write-ahead log).
        await conn.exec_driver_sql("PRAGMA secure_delete=ON")
    changed = False
    if await session.get(ErasedReferral, referral_id) is None:
        session.add(ErasedReferral(referral_id=referral_id, basis=basis, erased_at=erased_at))
        changed = True
    key = await session.get(ReferralKey, referral_id)
    if key is not None:
        await session.delete(key)
        changed = True
    await session.flush()
    sealed = await session.exec(
        update(Record)
        .where(col(Record.key_ref) == referral_id, col(Record.sealed).is_not(None))
        .values(sealed=None)
    )
    plain = await session.exec(
        update(Record)
        .where(
            col(Record.subject) == referral_id,
            col(Record.version) == 1,
            col(Record.payload).is_not(None),
        )
        .values(payload=None)
    )
    return changed or bool(sealed.rowcount) or bool(plain.rowcount)


async def compact(engine: AsyncEngine) -> None:
    """After an erasure: on SQLite, copy the write-ahead log into the database and truncate it,
    so older page images holding the destroyed key are gone from disk too. (PostgreSQL keeps
    dead row versions until VACUUM, and its WAL until recycled: see the operator guide.)"""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


async def replay_erasures(sessions: SessionFactory, entries: Sequence[Erasure]) -> int:
    """On start: carry out again every erasure in the ledger that the database does not show
    as done, or whose key is back (a database restored from a backup taken before the
    erasure). How many found something to destroy."""
    ids = list(dict.fromkeys(e.referral_id for e in entries))
    if not ids:
        return 0
    async with sessions() as session:
        known = set(await session.exec(select(ErasedReferral.referral_id)))
        keyed: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            keyed |= set(
                await session.exec(
                    select(ReferralKey.referral_id).where(col(ReferralKey.referral_id).in_(chunk))
                )
            )
    done = 0
    for entry in entries:
        if entry.referral_id in known and entry.referral_id not in keyed:
            continue
        async with transaction(sessions) as session:
            if await erase(
                session, referral_id=entry.referral_id, basis=entry.basis, erased_at=entry.erased_at
            ):
                done += 1
        known.add(entry.referral_id)
        keyed.discard(entry.referral_id)
    return done


# Reading


class Payloads:
    """Opens records' payloads for one read, unwrapping each key once. A payload is None when
    erased (its key or sealed copy destroyed); one that does not match its commitment raises."""

    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self._session = session
        self._vault = vault
        self._keys: dict[str, bytes | None] = {}

    async def _key(self, ref: str) -> bytes | None:
        if ref not in self._keys:
            row = await self._session.get(ReferralKey, ref)
            self._keys[ref] = (
                None
                if row is None
                else self._vault.unwrap(row.wrapped_key, row.master_key_id, record_id=_key_aad(ref))
            )
        return self._keys[ref]

    async def opened(
        self,
        *,
        sequence: int,
        version: int,
        payload: str | None,
        commitment: str | None,
        sealed: bytes | None,
        key_ref: str | None,
    ) -> tuple[str, str] | None:
        """(canonical payload text, salt in hex) of a v2 record, ("text", "") of a v1 record, or
        None when erased."""
        if version == 1:
            return None if payload is None else (payload, "")
        if sealed is None or key_ref is None:
            return None
        key = await self._key(key_ref)
        if key is None:
            return None
        try:
            plain = open_bytes(key, sealed, aad=_record_aad(sequence))
        except SealError as exc:
            raise PayloadMismatch(sequence) from exc
        salt, text = plain[: chain.SALT_BYTES].hex(), plain[chain.SALT_BYTES :].decode()
        if not chain.opens(commitment, salt, text):
            raise PayloadMismatch(sequence)
        return text, salt

    async def opened_record(self, r: Record) -> tuple[str, str] | None:
        """`opened` for a record row."""
        return await self.opened(
            sequence=r.sequence,
            version=r.version,
            payload=r.payload,
            commitment=r.commitment,
            sealed=r.sealed,
            key_ref=r.key_ref,
        )

    async def of(self, r: Record) -> dict[str, Any] | None:
        """A record's payload, None if erased; `{"error": ...}` if it fails its commitment."""
        try:
            found = await self.opened_record(r)
        except PayloadMismatch:
            return {"error": "payload does not match its commitment"}
        if found is None:
            return None
        opened: dict[str, Any] = orjson.loads(found[0])
        return opened


class PayloadMismatch(InternalError):
    """A sealed payload that does not open, or does not match the chain's commitment."""

    def __init__(self, sequence: int) -> None:
        super().__init__(f"record {sequence}: payload does not match its commitment")
        self.sequence = sequence


def as_dict(r: Record, payload: dict[str, Any] | None) -> dict[str, Any]:
    """A record as the auditor API shows it: an erased payload is `null` with `erased`."""
    out = {f: getattr(r, f) for f in chain.FIELDS}
    out["payload"] = payload
    out["erased"] = payload is None
    out["version"] = r.version
    out["commitment"] = r.commitment
    out["hash"] = r.hash
    out["trace_id"] = r.trace_id
    return out


async def describe(
    session: AsyncSession, records: Sequence[Record], *, vault: Vault
) -> list[dict[str, Any]]:
    payloads = Payloads(session, vault)
    return [as_dict(r, await payloads.of(r)) for r in records]


_parse = chain.parse_stamp


# What a timeline shows of each identification and investigation step (never a number).
IDENTIFICATION_STEPS: dict[str, tuple[str, ...]] = {
    "referral.identification_decided": ("decision", "previous", "decided_at", "basis"),
    "referral.reflection_started": ("started_at", "ends_at"),
    "referral.reflection_ended": ("ended_at",),
    "referral.identification_overdue": ("authority", "due"),
    "referral.investigation_recorded": ("opened", "date"),
}


def _step(r: Record, payload: dict[str, Any] | None) -> dict[str, Any]:
    step: dict[str, Any] = {
        "sequence": r.sequence,
        "type": r.type,
        "time": r.time,
        "agency": r.agency,
        "actor": r.client_id or r.source,
        "source": r.source,
        "trace_id": r.trace_id,
    }
    if r.type.startswith("access."):
        step["outcome"] = r.outcome
    if payload is None:  # erased: who did what and when stays, the details are gone
        step["payload"] = None
        step["erased"] = True
        return step
    if "error" in payload and len(payload) == 1:
        step["payload_error"] = payload["error"]
        return step
    if r.type == ERASED:
        step["basis"] = payload.get("basis")
    elif r.type == "referral.routed":
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


async def timeline(
    session: AsyncSession, *, referral_id: str, vault: Vault
) -> list[dict[str, Any]]:
    """Every recorded step of a referral in time order, with the time since the one before and
    since the first. Time, not chain order: events of different services reach audit in
    whatever order their relays and partitions deliver them (each step keeps its sequence)."""
    rows = await session.exec(
        select(Record)
        .where(Record.subject == referral_id)
        .order_by(col(Record.time), col(Record.sequence))
    )
    steps = []
    first = previous = None
    payloads = Payloads(session, vault)
    for r in rows:
        moment = _parse(r.time)
        first = first or moment
        step = _step(r, await payloads.of(r))
        step["since_previous_ms"] = (
            int((moment - previous).total_seconds() * 1000) if previous else 0
        )
        step["since_start_ms"] = int((moment - first).total_seconds() * 1000)
        previous = moment
        steps.append(step)
    return steps


# Verification and checkpoints


COLUMNS = ", ".join(f'"{f}"' for f in (*chain.FIELDS, "hash", "version", "commitment"))
# Export: the chain's columns, then completeness, then what opens the payload.
EXPORTED = ("source_sequence", "received_at", "sealed", "key_ref")
NUMBERED = COLUMNS + "".join(f', "{c}"' for c in EXPORTED)


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
    """Every record as a plain tuple (FIELDS..., hash, version, commitment), in sequence order,
    in batches; with `numbers`, followed by the `EXPORTED` columns.

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
    session: AsyncSession,
    *,
    vkey: str,
    grace: timedelta = timedelta(minutes=3),
    vault: Vault | None = None,
) -> dict[str, Any]:
    """The chain over commitments (no payload is opened), every checkpoint, each source's
    numbers; with `vault`, also every payload still sealed against its commitment."""
    finding = chain.Finding(True, 0, None, None, chain.GENESIS)
    heads: dict[int, str] = {}
    start, prev = 1, chain.GENESIS
    # Erasures carried out but not (yet) in the chain: a restored backup replayed from the
    # ledger, before the `referral.erased` event is consumed again.
    state = chain.ChainState(erased=set(await session.exec(select(ErasedReferral.referral_id))))
    async with contextlib.aclosing(rows(session)) as batches:
        async for chunk in batches:
            part = chain.verify_records(chunk, start=start, prev=prev, state=state)
            finding = chain.Finding(
                part.ok,
                finding.records + part.records,
                part.first_bad_sequence,
                part.problem,
                part.head_hash,
            )
            for row in chunk[: part.records]:
                heads[row[0]] = row[chain.HASH]
            if not part.ok:
                break
            start, prev = start + part.records, part.head_hash
    finding = state.finish(finding)
    payload_check: dict[str, Any] | None = None
    if vault is not None:  # opening every sealed payload: much slower, and needs the keys
        payload_check = await check_payloads(session, vault=vault)
        bad = payload_check["first_bad_sequence"]
        if bad is not None and (finding.first_bad_sequence or bad + 1) > bad:
            problem = "payload does not match its commitment"
            finding = chain.Finding(False, bad - 1, bad, problem, finding.head_hash)
    notes = [
        c.note
        for c in await session.exec(select(ChainCheckpoint).order_by(col(ChainCheckpoint.id)))
    ]
    checked = chain.check_checkpoints(notes, vkey, _checkpoint_heads(heads, notes), finding)
    gaps = await missing(session, grace=grace)
    result = {
        "ok": checked["ok"] and not gaps,
        "records": finding.records,
        "first_bad_sequence": checked["first_bad_sequence"],
        "problem": finding.problem,
        "head_hash": finding.head_hash,
        "checkpoints": checked["checkpoints"],
        "missing": gaps,
    }
    if payload_check is not None:
        result["payloads"] = payload_check
    return result


async def check_payloads(session: AsyncSession, *, vault: Vault) -> dict[str, Any]:
    """Open every sealed payload and check it against the chain's commitment (a payload or
    salt swapped between records, or re-sealed with different content, shows here)."""
    payloads = Payloads(session, vault)
    checked = erased = 0
    after = 0
    while True:
        batch = list(
            await session.exec(
                select(Record)
                .where(col(Record.sequence) > after, Record.version == 2)
                .order_by(col(Record.sequence))
                .limit(5_000)
            )
        )
        if not batch:
            return {"checked": checked, "erased": erased, "first_bad_sequence": None}
        for r in batch:
            try:
                found = await payloads.opened_record(r)
            except PayloadMismatch as exc:
                return {"checked": checked, "erased": erased, "first_bad_sequence": exc.sequence}
            checked += found is not None
            erased += found is None
        after = batch[-1].sequence


def _checkpoint_heads(heads: dict[int, str], notes: list[str]) -> dict[int, str]:
    sizes = {chain._claimed_size(n) for n in notes}
    return {s: h for s, h in heads.items() if s in sizes}


async def signing_key(session: AsyncSession, *, name: str, vault: Vault) -> Ed25519PrivateKey:
    """The checkpoint key, created (and sealed) on first use."""
    row = await session.get(SealingKey, name)
    if row is None:
        key = Ed25519PrivateKey.generate()
        sealed = vault.seal(
            {"private": key.private_bytes_raw().hex()}, record_id=f"audit-key:{name}"
        )
        row = SealingKey(
            name=name,
            public_key=key.public_key().public_bytes_raw(),
            sealed_private=sealed.ciphertext,
            wrapped_key=sealed.wrapped_key,
            master_key_id=sealed.master_key_id,
        )
        session.add(row)
        await session.flush()
        return key
    opened = vault.open_row(row, record_id=f"audit-key:{name}", column="sealed_private")
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(opened["private"]))


async def checkpoint(
    session: AsyncSession, *, name: str, origin: str, vault: Vault, force: bool = False
) -> ChainCheckpoint | None:
    """Sign the current head; None if nothing was appended since the last checkpoint."""
    key = await signing_key(session, name=name, vault=vault)
    top = await head(session)
    last = (
        await session.exec(
            select(ChainCheckpoint).order_by(col(ChainCheckpoint.id).desc()).limit(1)
        )
    ).first()
    if top.sequence == 0 or (last is not None and last.size == top.sequence and not force):
        return None
    moment = stamp(utcnow())
    body = chain.checkpoint_body(origin, top.sequence, top.hash, moment)
    note = chain.sign_checkpoint(body, name=name, key=key)
    row = ChainCheckpoint(size=top.sequence, head_hash=top.hash, time=moment, note=note)
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


async def export_lines(
    session: AsyncSession, *, origin: str, vkey: str, vault: Vault
) -> AsyncIterator[bytes]:
    """The export as JSON Lines: a header, every record in order, then the checkpoints. A v2
    record carries its payload and salt opened (so the offline verifier checks them against
    the commitment), or `"payload": null, "erased": true`.

    A consistent cut: the checkpoints as of now and the records up to the head as of now, so
    appends during a long export cannot make a checkpoint look truncated."""
    header = {
        "kind": "header",
        "format": "nrm-audit-export/1",
        "origin": origin,
        "exported_at": stamp(utcnow()),
    }
    yield orjson.dumps({**header, "public_key": vkey}) + b"\n"
    notes = list(await session.exec(select(ChainCheckpoint).order_by(col(ChainCheckpoint.id))))
    erasures = list(
        await session.exec(select(ErasedReferral).order_by(col(ErasedReferral.erased_at)))
    )
    upto = (await head(session)).sequence
    names = (*chain.FIELDS, "hash", "version", "commitment", *EXPORTED)
    payloads = Payloads(session, vault)
    async for chunk in rows(session, upto=upto, numbers=True):
        for row in chunk:
            item = dict(zip(names, row, strict=True))
            if item["received_at"] is not None:
                item["received_at"] = stamp(_aware(item["received_at"]))
            sealed, key_ref = item.pop("sealed"), item.pop("key_ref")
            if item["version"] == 1:
                del item["version"], item["commitment"]  # as exported before v2 existed
                item["erased"] = item["payload"] is None
            else:
                try:
                    found = await payloads.opened(
                        sequence=item["sequence"],
                        version=2,
                        payload=None,
                        commitment=item["commitment"],
                        sealed=sealed,
                        key_ref=key_ref,
                    )
                except PayloadMismatch:
                    found = None  # the offline check then finds the record has no payload
                    item["payload_error"] = "payload does not match its commitment"
                item["payload"], item["salt"] = found if found is not None else (None, None)
                item["erased"] = found is None and "payload_error" not in item
            yield orjson.dumps({"kind": "record", **item}) + b"\n"
    for c in notes:
        yield orjson.dumps({"kind": "checkpoint", "size": c.size, "note": c.note}) + b"\n"
    for e in erasures:  # ids and basis codes only, as in the ledger
        item = {"kind": "erasure", "referral_id": e.referral_id, "basis": e.basis}
        yield orjson.dumps({**item, "erased_at": stamp(e.erased_at)}) + b"\n"
