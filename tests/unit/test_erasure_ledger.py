import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from services.common.erasure import ErasureLedger


def test_ledger_appends_syncs_and_survives_a_torn_line(tmp_path: Path) -> None:
    ledger = ErasureLedger(tmp_path / "ledger" / "intake-erasure-ledger.jsonl")
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    ledger.record(referral_id="r1", basis="victim_request", erased_at=at)
    with ledger.path.open("ab") as f:
        f.write(b'{"referral_id": "r2", "ba')  # a crash mid-write
    ledger.record(referral_id="r3", basis="retention_expired", erased_at=at)

    assert [(e.referral_id, e.basis) for e in ledger.entries()] == [
        ("r1", "victim_request"),
        ("r3", "retention_expired"),
    ]
    assert "r1" in ledger
    assert "r2" not in ledger
    assert stat.S_IMODE(os.stat(ledger.path).st_mode) == 0o600


def test_missing_ledger_is_empty(tmp_path: Path) -> None:
    assert ErasureLedger(tmp_path / "none.jsonl").entries() == []
