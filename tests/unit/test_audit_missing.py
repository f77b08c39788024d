"""Completeness per source: which event numbers audit lacks, and since when that counts."""

from datetime import UTC, datetime, timedelta

from services.audit.chain import find_missing

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_gaps_are_reported_per_source_as_ranges_once_past_the_grace_period() -> None:
    held = [
        ("intake", 1, at(0)),
        ("intake", 2, at(1)),
        ("intake", 5, at(2)),  # 3 and 4 missing, seen since 5 arrived at t=2
        ("intake", 9, at(3)),  # 6..8 missing
        ("router", 2, at(1)),  # 1 missing
        ("router", 3, at(1)),
        ("notify", 1, at(0)),
        ("notify", 2, at(0)),
    ]
    assert find_missing(held, cutoff=at(10)) == {"intake": [[3, 4], [6, 8]], "router": [[1, 1]]}


def test_a_gap_younger_than_the_grace_period_is_not_missing_yet() -> None:
    held = [("intake", 1, at(0)), ("intake", 3, at(50)), ("intake", 6, at(5))]
    # Cut-off at t=20: the gap before 6 (4..5) is old enough, the one before 3 is not.
    assert find_missing(held, cutoff=at(20)) == {"intake": [[4, 5]]}
    assert find_missing(held, cutoff=at(60)) == {"intake": [[2, 2], [4, 5]]}


def test_duplicates_and_arrival_order_change_nothing() -> None:
    held = [("audit", 3, at(5)), ("audit", 1, at(1)), ("audit", 2, at(2)), ("audit", 2, at(9))]
    assert find_missing(held, cutoff=at(100)) == {}
    assert find_missing([], cutoff=at(100)) == {}
