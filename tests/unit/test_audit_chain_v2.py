"""Chain versions 1 and 2 in one chain: commitments instead of payloads, erased payloads, and
the tampering a version change, a commitment or a salt swap would hide."""

import json
from typing import Any

from services.audit import chain

SALT = bytes(range(32))
Row = tuple[Any, ...]


def v1(seq: int, prev: str, subject: str, payload: dict[str, Any], kind: str = "x.y") -> Row:
    values = (
        seq, f"e{seq}", kind, "2026-11-28T10:00:00.000000Z", "intake", "gp", "gp", subject,
        None, "nrm.referrals.v1", 0, seq, chain.canonical(payload), prev,
    )  # fmt: skip
    return (*values, chain.record_hash(values), 1, None)


def v2(seq: int, prev: str, subject: str, payload: dict[str, Any], kind: str = "x.y") -> Row:
    text = chain.canonical(payload)
    commitment = chain.commitment(SALT, text)
    values = (
        seq, f"e{seq}", kind, "2026-11-28T10:00:00.000000Z", "intake", "gp", "gp", subject,
        None, "nrm.referrals.v1", 0, seq, commitment, prev,
    )  # fmt: skip
    return (*values[:12], None, prev, chain.record_hash_v2(values), 2, commitment)


def mixed() -> list[Row]:
    """Records 1-3 version 1 (referral a, b, a), 4-7 version 2, 6 the erasure of a."""
    rows: list[Row] = []
    prev = chain.GENESIS
    plan: list[tuple[Any, str, dict[str, Any], str]] = [
        (v1, "a", {"note": "canary-v1"}, "x.y"),
        (v1, "b", {"n": 2}, "x.y"),
        (v1, "a", {"n": 3}, "x.y"),
        (v2, "a", {"n": 4}, "x.y"),
        (v2, "b", {"n": 5}, "x.y"),
        (v2, "a", {"referral_id": "a", "basis": "victim_request"}, "referral.erased"),
        (v2, "b", {"n": 7}, "x.y"),
    ]
    for seq, (make, subject, payload, kind) in enumerate(plan, start=1):
        rows.append(make(seq, prev, subject, payload, kind))
        prev = rows[-1][chain.HASH]
    return rows


def with_(row: Row, **changes: Any) -> Row:
    index = {**{f: i for i, f in enumerate(chain.FIELDS)}, "version": 15, "commitment": 16}
    out = list(row)
    for name, value in changes.items():
        out[index[name]] = value
    return tuple(out)


def test_a_mixed_chain_verifies() -> None:
    finding = chain.verify_records(mixed())
    assert (finding.ok, finding.records, finding.first_bad_sequence) == (True, 7, None)


def test_v1_rows_without_version_columns_still_verify() -> None:
    rows = [r[:15] for r in mixed()[:3]]
    assert chain.verify_records(rows).ok is True


def test_erased_v1_payloads_verify_by_their_links_when_the_referral_was_erased() -> None:
    rows = mixed()
    rows[0] = with_(rows[0], payload=None)
    rows[2] = with_(rows[2], payload=None)
    assert chain.verify_records(rows).ok is True
    # Referral b was never erased: its v1 record may not lose its payload.
    rows[1] = with_(rows[1], payload=None)
    finding = chain.verify_records(rows)
    assert (finding.ok, finding.first_bad_sequence) == (False, 2)
    assert (
        finding.problem == "payload dropped from a version 1 record whose referral was not erased"
    )


def test_a_changed_commitment_is_found_at_its_record() -> None:
    rows = mixed()
    rows[4] = with_(rows[4], commitment=chain.commitment(SALT, chain.canonical({"n": 6})))
    finding = chain.verify_records(rows)
    assert (finding.ok, finding.first_bad_sequence, finding.records) == (False, 5, 4)
    assert finding.problem == "record does not match its hash"


def test_a_changed_field_of_a_v2_record_is_found() -> None:
    rows = mixed()
    rows[5] = with_(rows[5], agency="mvd-ctu")
    assert chain.verify_records(rows).first_bad_sequence == 6


def test_version_downgrade_and_upgrade_are_found() -> None:
    rows = mixed()
    # v2 record 5 relabelled v1, payload left out (as if erased): v1 cannot follow v2.
    down = [*rows[:4], with_(rows[4], version=1), *rows[5:]]
    finding = chain.verify_records(down)
    assert (finding.first_bad_sequence, finding.problem) == (
        5,
        "a version 1 record after version 2 records",
    )
    # The first v2 record relabelled v1 with a payload filled in: its hash binds the v2 tag.
    first = [*rows[:3], with_(rows[3], version=1, payload=chain.canonical({"n": 4})), *rows[4:]]
    assert chain.verify_records(first).first_bad_sequence == 4
    # A v1 record relabelled v2 with a commitment to its payload.
    text = rows[1][12]
    up = [rows[0], with_(rows[1], version=2, commitment=chain.commitment(SALT, text)), *rows[2:]]
    assert chain.verify_records(up).first_bad_sequence == 2
    unknown = [*rows[:5], with_(rows[5], version=3), *rows[6:]]
    assert chain.verify_records(unknown).first_bad_sequence == 6


def test_checking_in_batches_carries_the_state() -> None:
    rows = mixed()
    rows[1] = with_(rows[1], payload=None)  # b: not erased
    state = chain.ChainState()
    first = chain.verify_records(rows[:4], state=state)
    rest = chain.verify_records(rows[4:], start=5, prev=first.head_hash, state=state)
    assert (first.ok, rest.ok) == (True, True)
    assert state.finish(rest).first_bad_sequence == 2
    # An erasure known outside the chain (a restored database replayed from the ledger).
    assert chain.ChainState(erased={"b"}).finish(rest).ok is True


def export_lines(rows: list[Row], payloads: dict[int, tuple[str, str]]) -> list[str]:
    lines = [json.dumps({"kind": "header", "format": "nrm-audit-export/1"})]
    for row in rows:
        item: dict[str, Any] = dict(zip((*chain.FIELDS, "hash"), row[:15], strict=True))
        if row[15] == 2:
            item["version"], item["commitment"] = 2, row[16]
            text, salt = payloads.get(row[0], (None, None))
            item["payload"], item["salt"] = text, salt
        lines.append(json.dumps({"kind": "record", **item}))
    return lines


def test_an_export_checks_payloads_against_commitments() -> None:
    rows = mixed()
    opened = {
        4: (chain.canonical({"n": 4}), SALT.hex()),
        5: (chain.canonical({"n": 5}), SALT.hex()),
        7: (chain.canonical({"n": 7}), SALT.hex()),
    }
    vkey = chain.verifier_key("k", bytes(32))
    assert chain.verify_export(export_lines(rows, opened), vkey)["ok"] is True
    # Payloads swapped between records 5 and 7: each fails its commitment; the first is named.
    swapped = {**opened, 5: opened[7], 7: opened[5]}
    result = chain.verify_export(export_lines(rows, swapped), vkey)
    assert (result["ok"], result["first_bad_sequence"]) == (False, 5)
    other_salt = {**opened, 7: (opened[7][0], bytes(32).hex())}
    result = chain.verify_export(export_lines(rows, other_salt), vkey)
    assert (result["ok"], result["first_bad_sequence"]) == (False, 7)
    # Erased (no payload, no salt): nothing to check, the chain still verifies.
    assert chain.verify_export(export_lines(rows, {}), vkey)["ok"] is True


def test_a_commitment_does_not_reveal_a_small_payload() -> None:
    text = chain.canonical({"minor": True})
    assert chain.commitment(SALT, text) != chain.commitment(bytes(32), text)
    assert chain.opens(chain.commitment(SALT, text), SALT.hex(), text)
    assert not chain.opens(chain.commitment(SALT, text), SALT.hex()[:-2], text)
