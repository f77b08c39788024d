"""The retention schedule: the policy file's `retention:` section (deploy/config/routing.yaml).

How long intake keeps a referral after its outcome, before the daily sweep erases it (basis
`retention_expired`). Read by intake (which erases) and validated by the router's policy
loader (which refuses a bad file, naming the line). Referrals without one of these outcomes
are kept: their case is still open.
"""

import calendar
import functools
import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from contracts.referrals import MINOR_AGE


class Outcome(StrEnum):
    """The outcomes a retention period runs from (the moment each was reached)."""

    NO_REASONABLE_GROUNDS = "no_reasonable_grounds"  # the authority's decision
    NOT_CONFIRMED = "not_confirmed"  # the authority's conclusive decision
    CLOSED = "closed"  # every recipient completed, declined or was escalated past
    WITHDRAWN = "withdrawn"  # the submitter withdrew it


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 28 February in a common year."""
    year = day.year + years
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


class Period(BaseModel):
    """A retention period: whole years (calendar years: `3y`) or days (`90d`)."""

    model_config = ConfigDict(frozen=True)

    years: int = 0
    days: int = 0

    def after(self, moment: datetime) -> datetime:
        shifted = moment.replace(
            year=moment.year + self.years,
            day=min(moment.day, calendar.monthrange(moment.year + self.years, moment.month)[1]),
        )
        return shifted + timedelta(days=self.days)

    def __str__(self) -> str:
        return f"{self.years}y" if self.years else f"{self.days}d"


def _period(value: Any) -> Any:
    if isinstance(value, Period | dict):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([yd])\s*", str(value))
    if not match or int(match[1]) == 0 or int(match[1]) > 36_500:
        raise ValueError("a retention period is a positive number of years or days, like 3y or 90d")
    return Period(years=int(match[1])) if match[2] == "y" else Period(days=int(match[1]))


RetentionPeriod = Annotated[Period, BeforeValidator(_period)]


class Minors(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    years_after_majority: Annotated[int, Field(ge=0, le=100)] = Field(
        description="A minor's referral is kept at least until this many years after majority"
    )


class Retention(BaseModel):
    """Periods by outcome. A victim who was a minor when referred is kept at least until
    majority plus `minors.years_after_majority` years, whatever the outcome's period."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    no_reasonable_grounds: RetentionPeriod
    not_confirmed: RetentionPeriod
    closed: RetentionPeriod
    withdrawn: RetentionPeriod
    minors: Minors

    def period(self, outcome: Outcome) -> Period:
        found: Period = getattr(self, outcome.value)
        return found

    def due(self, *, outcome: Outcome, reached: datetime, majority: date | None) -> datetime:
        """When a referral that reached `outcome` at `reached` falls due; `majority`: the
        minor's majority (None for an adult)."""
        due = self.period(outcome).after(reached)
        if majority is not None:
            kept = add_years(majority, self.minors.years_after_majority)
            due = max(due, datetime(kept.year, kept.month, kept.day, tzinfo=reached.tzinfo))
        return due


def majority_on(*, born: date | None, age: int | None, recorded: date, minor: bool) -> date | None:
    """The first day of the month after the victim's 18th birthday, or None for an adult.

    Only this is kept in clear (the date of birth stays sealed): a month is all the retention
    sweep needs, and rounding up never erases a child's file before majority. Without a date of
    birth, the stated age gives the latest possible birthday; a presumed minor of unknown age is
    kept as if newly born (the longest, protective reading of the presumption)."""
    if not minor:
        return None
    if born is not None:
        eighteen = add_years(born, MINOR_AGE)
    elif age is not None and age < MINOR_AGE:
        # Aged `age` on `recorded`: 18 at the latest (18 - age) years after `recorded`.
        eighteen = add_years(recorded, MINOR_AGE - age)
    else:
        eighteen = add_years(recorded, MINOR_AGE)
    if eighteen.day == 1:
        return eighteen
    nxt = eighteen.replace(day=28) + timedelta(days=4)
    return nxt.replace(day=1)


@functools.cache
def _read(path: Path, mtime_ns: int) -> Retention | None:
    data = yaml.safe_load(path.read_text()) or {}
    section = data.get("retention") if isinstance(data, dict) else None
    return Retention.model_validate(section) if section is not None else None


def load_retention(path: Path) -> Retention | None:
    """The `retention:` section of the policy file at `path` (read once per version of the
    file), or None when the file or the section is absent (then nothing is erased by age)."""
    if not path.is_file():
        return None
    return _read(path, path.stat().st_mtime_ns)
