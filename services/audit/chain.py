"""The hash chain and its checkpoints: pure functions shared by the service and offline
verification (`nrm audit verify`), so both check exactly the same thing.

Two record versions share one chain. Version 1 (records written before erasure existed): the
hash is SHA-256 over the canonical JSON array of the fields in `FIELDS` order, the payload
itself included. Version 2: the array is `[V2_TAG, *FIELDS_V2 values]`, where the payload is
replaced by its salted commitment `SHA-256(salt || canonical payload)`; the payload and salt are
sealed under the referral's key, so destroying that key erases the payload while the chain
still verifies. The tag binds the version: a v2 record relabelled v1 (or the reverse) no longer
matches its hash, and v1 records cannot follow v2 ones. A v1 record whose payload was dropped at
erasure can only be checked by its links (its hash is bound by the next record's `prev_hash`
and by checkpoints, but its own fields cannot be recomputed); it is accepted only before the
first v2 record and only if its referral's `referral.erased` record is in the chain.

A checkpoint is a C2SP signed note
(https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint) over the origin, the number of
records and the head hash, signed with Ed25519.
"""

import base64
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# The order is part of the format: changing it breaks every existing chain.
FIELDS = (
    "sequence",
    "event_id",
    "type",
    "time",
    "source",
    "agency",
    "client_id",
    "subject",
    "outcome",
    "topic",
    "partition",
    "offset",
    "payload",
    "prev_hash",
)
# Version 2: the payload's commitment in its place (and the tag first, binding the version).
FIELDS_V2 = (*FIELDS[:12], "commitment", "prev_hash")
V2_TAG = "nrm-audit/v2"
# Rows handed to `verify_records`: the FIELDS values, then hash, version and commitment (a v2
# row's payload is None: verification never needs it).
HASH, VERSION, COMMITMENT = 14, 15, 16
GENESIS = "0" * 64  # the prev_hash of record 1
SALT_BYTES = 32
ED25519 = b"\x01"  # signed-note signature type


def record_hash(values: Sequence[Any]) -> str:
    """The hash of one record, from its values in `FIELDS` order (prev_hash last)."""
    if not isinstance(values, list | tuple):
        values = list(values)
    return hashlib.sha256(orjson.dumps(values)).hexdigest()


def record_hash_v2(values: Sequence[Any]) -> str:
    """The hash of a version 2 record, from its values in `FIELDS_V2` order."""
    return hashlib.sha256(orjson.dumps([V2_TAG, *values])).hexdigest()


def canonical(payload: dict[str, Any]) -> str:
    """The payload text that is committed to (and, in v1, hashed): sorted keys, no spaces."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


def commitment(salt: bytes, payload: str) -> str:
    """The salted commitment to a payload's canonical text. The salt keeps a small payload
    (a handful of vocabulary codes) from being found by trying every candidate."""
    return hashlib.sha256(salt + payload.encode()).hexdigest()


@dataclass
class ChainState:
    """What a check of the chain carries from one batch to the next."""

    v2_seen: bool = False
    erased_v1: dict[str, int] = field(default_factory=dict)  # subject -> first such sequence
    erased: set[str] = field(default_factory=set)  # subjects with a `referral.erased` record

    def finish(self, finding: "Finding") -> "Finding":
        """After the last record: an erased v1 record needs its referral's erasure record."""
        unexplained = [seq for subject, seq in self.erased_v1.items() if subject not in self.erased]
        if not finding.ok or not unexplained:
            return finding
        bad = min(unexplained)
        problem = "payload dropped from a version 1 record whose referral was not erased"
        return Finding(False, bad - 1, bad, problem, finding.head_hash)


@dataclass(frozen=True)
class Finding:
    ok: bool
    records: int
    first_bad_sequence: int | None
    problem: str | None
    head_hash: str


def verify_records(
    rows: Iterable[Sequence[Any]],
    *,
    start: int = 1,
    prev: str = GENESIS,
    state: ChainState | None = None,
) -> Finding:
    """Check a run of records given as (FIELDS..., hash, version, commitment) tuples in
    sequence order (a tuple that ends at hash is version 1).

    Names the first sequence that is not what an untampered chain would hold there: a changed
    field (hash mismatch), a deleted or inserted record (sequence or prev_hash break), two
    records swapped (sequence out of order), a version changed. With `state` the caller checks
    in batches and calls `state.finish` after the last one; without, this run is the chain.
    """
    own = state is None
    state = state if state is not None else ChainState()
    expected = start
    count = 0

    def bad(problem: str) -> Finding:
        return Finding(False, count, expected, problem, prev)

    for row in rows:
        sequence, stored_prev, stored_hash = row[0], row[13], row[HASH]
        if sequence != expected:
            return bad(f"expected sequence {expected}, found {sequence}")
        if stored_prev != prev:
            return bad("prev_hash does not match the record before")
        version = row[VERSION] if len(row) > VERSION else 1
        if version == 2:
            state.v2_seen = True
            # `record_hash_v2` inline: one list instead of two tuples per record.
            values = [V2_TAG, *row[:12], row[COMMITMENT], stored_prev]
            computed = hashlib.sha256(orjson.dumps(values)).hexdigest()
        elif version == 1:
            if state.v2_seen:
                return bad("a version 1 record after version 2 records")
            if row[12] is None:  # payload dropped at erasure: bound by its links only
                state.erased_v1.setdefault(row[7], sequence)
                computed = stored_hash
            else:
                computed = record_hash(row[:14])
        else:
            return bad(f"unknown record version {version!r}")
        if computed != stored_hash:
            return bad("record does not match its hash")
        if row[2] == "referral.erased" and row[7]:
            state.erased.add(row[7])
        prev = stored_hash
        expected += 1
        count += 1
    finding = Finding(True, count, None, None, prev)
    return state.finish(finding) if own else finding


# Signed-note checkpoints


def key_id(name: str, public: bytes) -> bytes:
    """The 4-byte key hash of an Ed25519 note key."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def verifier_key(name: str, public: bytes) -> str:
    """The public key as a note verifier key: `<name>+<hex key id>+<base64(type || key)>`."""
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(ED25519 + public).decode()}"


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    name, hexid, encoded = vkey.strip().split("+", 2)  # base64 may hold "+" too
    raw = base64.b64decode(encoded)
    if raw[:1] != ED25519 or len(raw) != 33:
        raise ValueError("not an Ed25519 verifier key")
    if key_id(name, raw[1:]).hex() != hexid:
        raise ValueError("key id does not match the key")
    return name, Ed25519PublicKey.from_public_bytes(raw[1:])


def checkpoint_body(origin: str, size: int, head_hash: str, time: str) -> str:
    """The note text: origin, tree size, base64 head hash, then a time extension line."""
    root = base64.b64encode(bytes.fromhex(head_hash)).decode()
    return f"{origin}\n{size}\n{root}\ntime {time}\n"


def sign_checkpoint(body: str, *, name: str, key: Ed25519PrivateKey) -> str:
    public = key.public_key().public_bytes_raw()
    signature = key.sign(body.encode())
    stamp = base64.b64encode(key_id(name, public) + signature).decode()
    return f"{body}\n\u2014 {name} {stamp}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    head_hash: str
    time: str


def open_checkpoint(note: str, vkey: str) -> Checkpoint:
    """Parse and verify a signed checkpoint note; raises ValueError if it does not verify."""
    name, public = parse_verifier_key(vkey)
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise ValueError("not a signed note")
    body += "\n"
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            continue
        signer, _, encoded = line[2:].rpartition(" ")
        raw = base64.b64decode(encoded)
        if signer != name or raw[:4] != key_id(name, public.public_bytes_raw()):
            continue
        try:
            public.verify(raw[4:], body.encode())
        except InvalidSignature:
            raise ValueError("checkpoint signature does not verify") from None
        lines = body.splitlines()
        if len(lines) < 3:
            raise ValueError("checkpoint body is too short")
        time = next((x[5:] for x in lines[3:] if x.startswith("time ")), "")
        return Checkpoint(lines[0], int(lines[1]), base64.b64decode(lines[2]).hex(), time)
    raise ValueError(f"no signature by {name}")


# Completeness: every source numbers its events 1, 2, 3, ... in commit order (`ce_sequence`).


def find_missing(
    numbers: Iterable[tuple[str, int, datetime]], *, cutoff: datetime
) -> dict[str, list[list[int]]]:
    """Per source, the ranges `[first, last]` of event numbers not held, from (source, number,
    received at) of the records held. A gap counts only once the record after it arrived
    before `cutoff` (now minus the grace period): events of one source may arrive out of order
    across partitions, and a late one is not a missing one. A gap after a source's highest
    number held cannot be seen."""
    by_source: dict[str, dict[int, datetime]] = defaultdict(dict)
    for source, number, received in numbers:
        held = by_source[source]
        if number not in held or received < held[number]:
            held[number] = received
    missing: dict[str, list[list[int]]] = {}
    for source in sorted(by_source):
        held = by_source[source]
        previous = 0
        for number in sorted(held):
            if number > previous + 1 and held[number] < cutoff:
                missing.setdefault(source, []).append([previous + 1, number - 1])
            previous = number
    return missing


def parse_stamp(value: str) -> datetime:
    """A fixed-width UTC stamp (`2026-11-28T15:49:05.123456Z`) as an aware datetime."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# Export files (JSON Lines): a header, the records in order, then the checkpoints.


def verify_export(
    lines: Iterable[bytes | str], vkey: str, *, grace: timedelta = timedelta(minutes=3)
) -> dict[str, Any]:
    """Verify an export offline: the chain, each checkpoint against the chain, and each
    source's numbers (gaps older than `grace` at the time of the export are `missing`)."""
    heads: dict[int, str] = {}
    checkpoints: list[str] = []
    numbers: list[tuple[str, int, datetime]] = []
    exported_at: list[datetime] = []

    def records() -> Iterator[tuple[Any, ...]]:
        for line in lines:
            if not line.strip():
                continue
            item = orjson.loads(line)
            if item.get("kind") == "record":
                version = item.get("version", 1)
                row = (
                    *(item.get(f) for f in FIELDS),
                    item["hash"],
                    version,
                    item.get("commitment"),
                )
                heads[row[0]] = row[HASH]
                if item.get("payload_error"):  # found by the exporter
                    unopened.append(row[0])
                elif version == 2 and item.get("payload") is not None:
                    salt = item.get("salt") or ""
                    if not opens(row[COMMITMENT], salt, item["payload"]):
                        unopened.append(row[0])
                if item.get("source_sequence") is not None and item.get("received_at"):
                    received = parse_stamp(item["received_at"])
                    numbers.append((item["source"], int(item["source_sequence"]), received))
                yield row
            elif item.get("kind") == "checkpoint":
                checkpoints.append(item["note"])
            elif item.get("kind") == "erasure":  # after the records: read before `finish`
                state.erased.add(str(item["referral_id"]))
            elif item.get("kind") == "header" and item.get("exported_at"):
                exported_at.append(parse_stamp(item["exported_at"]))

    unopened: list[int] = []  # v2 records whose payload and salt do not match the commitment
    state = ChainState()
    read = records()
    finding = verify_records(read, state=state)
    if finding.ok:
        for _ in read:  # whatever follows the last record (checkpoints, erasures)
            pass
        finding = state.finish(finding)
    if unopened and (
        finding.first_bad_sequence is None or unopened[0] < finding.first_bad_sequence
    ):
        bad = unopened[0]
        problem = "payload does not match its commitment"
        finding = Finding(False, bad - 1, bad, problem, finding.head_hash)
    checked = check_checkpoints(checkpoints, vkey, heads, finding)
    now = exported_at[0] if exported_at else datetime.now(UTC)
    missing = find_missing(numbers, cutoff=now - grace)
    return {
        **_finding(finding),
        **checked,
        "ok": checked["ok"] and not missing,
        "missing": missing,
    }


def opens(stored: str | None, salt_hex: str, payload: str) -> bool:
    """Whether a payload and salt, as exported or unsealed, are what the chain committed to."""
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    return stored is not None and len(salt) == SALT_BYTES and commitment(salt, payload) == stored


def check_checkpoints(
    notes: list[str], vkey: str, heads: dict[int, str], finding: Finding
) -> dict[str, Any]:
    """Each checkpoint must verify and name the hash the chain holds at its size. A checkpoint
    beyond the last record means the tail after it was cut off."""
    bad: list[dict[str, Any]] = []
    first_bad = finding.first_bad_sequence
    for note in notes:
        try:
            cp = open_checkpoint(note, vkey)
        except ValueError as exc:
            claimed = _claimed_size(note)
            bad.append({"size": claimed, "problem": str(exc)})
            if claimed is not None:
                first_bad = min(first_bad or claimed, claimed)
            continue
        if cp.size > finding.records and finding.ok:
            bad.append({"size": cp.size, "problem": "records after this checkpoint are missing"})
            first_bad = min(first_bad or finding.records + 1, finding.records + 1)
        elif cp.size in heads and heads[cp.size] != cp.head_hash:
            bad.append({"size": cp.size, "problem": "chain head differs from the checkpoint"})
            first_bad = min(first_bad or cp.size, cp.size)
    ok = finding.ok and not bad
    return {
        "ok": ok,
        "first_bad_sequence": first_bad,
        "checkpoints": {"checked": len(notes), "bad": bad},
    }


def _claimed_size(note: str) -> int | None:
    lines = note.splitlines()
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "ok": f.ok,
        "records": f.records,
        "first_bad_sequence": f.first_bad_sequence,
        "problem": f.problem,
        "head_hash": f.head_hash,
    }
