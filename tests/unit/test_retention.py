"""The retention schedule: the policy file's section (refused with the line when wrong), due
dates by outcome, and a minor's majority kept to the month."""

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.common.retention import Outcome, load_retention, majority_on
from services.router.policy import Policy, PolicyError
from services.router.settings import EXAMPLE_POLICY


def test_the_example_schedule_and_its_due_dates() -> None:
    schedule = load_retention(EXAMPLE_POLICY)
    assert schedule is not None
    reached = datetime(2026, 2, 28, 10, 0, tzinfo=UTC)
    assert schedule.due(outcome=Outcome.WITHDRAWN, reached=reached, majority=None) == datetime(
        2027, 2, 28, 10, 0, tzinfo=UTC
    )
    assert schedule.due(outcome=Outcome.CLOSED, reached=reached, majority=None) == datetime(
        2029, 2, 28, 10, 0, tzinfo=UTC
    )
    # A minor: majority (2030-04-01) plus 3 years, later than the outcome's year.
    assert schedule.due(
        outcome=Outcome.WITHDRAWN, reached=reached, majority=date(2030, 4, 1)
    ) == datetime(2033, 4, 1, tzinfo=UTC)


def test_majority_is_kept_to_the_month_never_early() -> None:
    recorded = date(2026, 11, 29)
    assert majority_on(born=date(2012, 3, 14), age=None, recorded=recorded, minor=True) == date(
        2030, 4, 1
    )
    assert majority_on(born=date(2012, 3, 1), age=None, recorded=recorded, minor=True) == date(
        2030, 3, 1
    )
    # From the stated age: 18 at the latest 3 years after it was recorded.
    assert majority_on(born=None, age=15, recorded=recorded, minor=True) == date(2029, 12, 1)
    # A presumed minor of unknown age: as if newly born.
    assert majority_on(born=None, age=None, recorded=recorded, minor=True) == date(2044, 12, 1)
    assert majority_on(born=date(2002, 3, 14), age=None, recorded=recorded, minor=False) is None


def test_a_bad_retention_section_is_refused_naming_the_line(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE_POLICY.parent / "agencies.yaml", tmp_path / "agencies.yaml")
    text = EXAMPLE_POLICY.read_text()
    bad = tmp_path / "routing.yaml"
    bad.write_text(text.replace("  closed: 3y\n", "  closed: 3 weeks\n"))
    line = text[: text.index("  closed: 3y\n")].count("\n") + 1
    with pytest.raises(PolicyError) as refused:
        Policy.load(bad)
    assert str(refused.value) == (
        f"routing.yaml:{line}: retention.closed: a retention period is a positive number of "
        "years or days, like 3y or 90d"
    )
    bad.write_text(text.replace("    years_after_majority: 3\n", "    years_after: 3\n"))
    with pytest.raises(PolicyError) as refused:
        Policy.load(bad)
    assert [p.where for p in refused.value.problems] == [
        "retention.minors.years_after_majority",
        "retention.minors.years_after",
    ]
