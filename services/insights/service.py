"""Insights: the projection from the topics, and the statistics asked of it.

Handlers are order-insensitive across topics (first times are kept with `min`), so rebuilding
from the topics in any interleaving gives the same projection.
"""

import math
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events import (
    DeliveryAction,
    IdentificationDecided,
    InvestigationRecorded,
    ReferralAccepted,
    ReferralAcknowledged,
    ReferralConsentChanged,
    ReferralDeclined,
    ReferralRouted,
    ReferralSubmitted,
    ReferralWithdrawn,
)
from contracts.referrals import VictimStatistics
from contracts.vocabulary import (
    AgeBand,
    AgencyType,
    Exploitation,
    IdentificationDecision,
    ReferralKind,
    Role,
    Sex,
)
from services.common.auth import Principal
from services.common.db import insert_ignore
from services.common.errors import NotFound, UnprocessableContent
from services.common.models import utcnow
from services.common.outbox import forget_delivered
from services.insights.disclosure import ALL, Key, protect, published, with_margins
from services.insights.models import DeliveryFact, ErasedReferral, ReferralFact

# Projection


def _category(values: Sequence[str], *, none: str) -> str:
    """One category per referral keeps tables additive: several values count as `multiple`."""
    if not values:
        return none
    return values[0] if len(values) == 1 else "multiple"


def _victim(row: ReferralFact, stats: VictimStatistics | None) -> None:
    row.age_band = stats.age_band.value if stats else None
    row.sex = stats.sex.value if stats else None
    row.citizenship = stats.citizenship if stats else None


# `session.info`, filled per batch by `prefetch`: each referral's row (None: none yet) and its
# recipients' rows, so a batch's events cost no query each and, with no query between them,
# no flush each either (an ORM query flushes what is pending: an INSERT per event).
_FACTS = "insights.facts"
_DELIVERIES = "insights.deliveries"


async def prefetch(session: AsyncSession, *, referral_ids: Iterable[str]) -> None:
    """The rows a batch's events will touch, in three queries: their referrals' rows, their
    recipients' rows, and which of them are erased."""
    facts: dict[str, ReferralFact | None] = session.info.setdefault(_FACTS, {})
    deliveries: dict[str, dict[str, DeliveryFact]] = session.info.setdefault(_DELIVERIES, {})
    live: set[str] = session.info.setdefault(_LIVE, set())
    wanted = {i for i in referral_ids if i} - facts.keys()
    if not wanted:
        return
    found = await session.exec(
        select(ReferralFact).where(col(ReferralFact.referral_id).in_(wanted))
    )
    facts.update(dict.fromkeys(wanted))
    facts.update((row.referral_id, row) for row in found)
    recipients: dict[str, dict[str, DeliveryFact]] = {i: {} for i in wanted}
    for d in await session.exec(
        select(DeliveryFact).where(col(DeliveryFact.referral_id).in_(wanted))
    ):
        recipients[d.referral_id][d.agency] = d
    deliveries.update(recipients)
    erased = await session.exec(
        select(col(ErasedReferral.referral_id)).where(col(ErasedReferral.referral_id).in_(wanted))
    )
    live.update(wanted - set(erased))


async def _fact(session: AsyncSession, referral_id: str) -> ReferralFact | None:
    facts: dict[str, ReferralFact | None] = session.info.get(_FACTS, {})
    if referral_id in facts:
        return facts[referral_id]
    return await session.get(ReferralFact, referral_id)


async def _recipients(session: AsyncSession, referral_id: str) -> dict[str, DeliveryFact]:
    """The referral's recipients' rows by agency; rows added to it stay known to the batch."""
    deliveries: dict[str, dict[str, DeliveryFact]] = session.info.setdefault(_DELIVERIES, {})
    if referral_id not in deliveries:
        deliveries[referral_id] = {
            row.agency: row
            for row in await session.exec(
                select(DeliveryFact).where(col(DeliveryFact.referral_id) == referral_id)
            )
        }
    return deliveries[referral_id]


async def apply_submitted(session: AsyncSession, *, submitted: ReferralSubmitted) -> None:
    facts = submitted.facts
    row = await _fact(session, submitted.referral_id)
    if row is None:
        if await _erased(session, submitted.referral_id):
            return  # erased: counted under another id already
        row = ReferralFact(
            referral_id=submitted.referral_id,
            submitted_at=submitted.submitted_at,
            month=_month(submitted.submitted_at),
            kind=facts.kind.value,
            region=facts.region,
            exploitation=_category([e.value for e in facts.exploitation], none="other"),
            destination=_category(facts.destination_countries, none="none"),
            submitted_by=facts.submitted_by,
        )
        session.info.setdefault(_FACTS, {})[submitted.referral_id] = row
    row.minor = facts.minor
    consented = facts.consent is not None and facts.consent.statistics
    row.statistics_consent = consented
    _victim(row, submitted.statistics if consented else None)
    session.add(row)


async def apply_consent_changed(session: AsyncSession, *, changed: ReferralConsentChanged) -> None:
    row = await _fact(session, changed.referral_id)
    if row is None:
        return  # its submission is earlier on the same partition: never the case in order
    row.statistics_consent = changed.consent.statistics
    _victim(row, changed.statistics if changed.consent.statistics else None)
    session.add(row)


async def apply_withdrawn(session: AsyncSession, *, withdrawn: ReferralWithdrawn) -> None:
    row = await _fact(session, withdrawn.referral_id)
    if row is not None:
        row.withdrawn = True
        session.add(row)


async def apply_identification(session: AsyncSession, *, decided: IdentificationDecided) -> None:
    """A decision of the competent authority: the funnel's reasonable-grounds and confirmed
    stages, and the time to the reasonable-grounds decision (either way)."""
    row = await _fact(session, decided.referral_id)
    if row is None:
        return  # its submission is earlier on the same partition
    decision = decided.decision
    if decision in (
        IdentificationDecision.REASONABLE_GROUNDS,
        IdentificationDecision.NO_REASONABLE_GROUNDS,
    ):
        row.decided_at = _earliest(row.decided_at, decided.decided_at)
        row.authority = decided.authority
    if decision in (IdentificationDecision.REASONABLE_GROUNDS, IdentificationDecision.CONFIRMED):
        row.reasonable_grounds = True  # a confirmation follows reasonable grounds
    if decision == IdentificationDecision.CONFIRMED:
        row.confirmed = True
    session.add(row)


async def apply_investigation(session: AsyncSession, *, recorded: InvestigationRecorded) -> None:
    """Whether a pre-trial investigation was opened: the last record says (per-referral order
    on the partition)."""
    row = await _fact(session, recorded.referral_id)
    if row is not None:
        row.investigation_opened = recorded.opened
        session.add(row)


async def _delivery(session: AsyncSession, referral_id: str, agency: str) -> DeliveryFact | None:
    """The recipient's row, new if need be; None for an erased referral (not counted again)."""
    known = await _recipients(session, referral_id)
    row = known.get(agency)
    if row is not None:
        return row
    if await _erased(session, referral_id):
        return None
    row = known[agency] = DeliveryFact(referral_id=referral_id, agency=agency)
    return row


_LIVE = "insights.live"  # `session.info`: referrals found not erased in this transaction


async def _erased(session: AsyncSession, referral_id: str) -> bool:
    """Whether the referral was erased (its later events are dropped). A referral found live is
    remembered for the transaction: a batch asks for each of its events (`apply_erased`
    forgets it). With several insights instances, an erasure another one commits meanwhile is
    seen from this instance's next batch on, not from its next event: the race between
    instances that existed per event is now as wide as a batch."""
    live: set[str] = session.info.setdefault(_LIVE, set())
    if referral_id in live:
        return False
    if await session.get(ErasedReferral, referral_id) is not None:
        return True
    live.add(referral_id)
    return False


def _earliest(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new < current else current


async def apply_routed(session: AsyncSession, *, routed: ReferralRouted, at: datetime) -> None:
    """Each recipient's first routing: its time and its acknowledgement deadline."""
    if not routed.recipients:
        return
    known = await _recipients(session, routed.referral_id)
    for recipient in routed.recipients:
        row = known.get(recipient.agency)
        if row is None:
            if await _erased(session, routed.referral_id):
                return
            row = known[recipient.agency] = DeliveryFact(
                referral_id=routed.referral_id, agency=recipient.agency
            )
        if row.routed_at is None or at < row.routed_at:
            row.routed_at = at
            row.deadline = recipient.deadline
        session.add(row)


async def apply_action(session: AsyncSession, *, action: DeliveryAction) -> None:
    row = await _delivery(session, action.referral_id, action.agency)
    if row is None:
        return
    if isinstance(action, ReferralAcknowledged):
        row.acknowledged_at = _earliest(row.acknowledged_at, action.at)
    elif isinstance(action, ReferralAccepted):
        row.accepted_at = _earliest(row.accepted_at, action.at)
    elif isinstance(action, ReferralDeclined):
        row.declined_at = _earliest(row.declined_at, action.at)
    else:
        return
    session.add(row)


# Erasure


def _month_bounds(at: datetime) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(f"{_month(at)}-01T00:00:00+00:00")
    return start, datetime.fromisoformat(f"{_shift(_month(at), 1)}-01T00:00:00+00:00")


def _blur(anchors: Iterable[datetime]) -> timedelta:
    """A random shift that keeps every anchor in its month (what the statistics group by)."""
    lowest, highest = timedelta.min, timedelta.max
    for at in anchors:
        start, end = _month_bounds(at)
        lowest = max(lowest, start - at)
        highest = min(highest, end - at - timedelta(microseconds=1))
    if lowest > highest:  # no anchors
        return timedelta(0)
    span = (highest - lowest) // timedelta(microseconds=1)
    return lowest + timedelta(microseconds=secrets.randbelow(span + 1))


async def apply_erased(session: AsyncSession, *, referral_id: str) -> bool:
    """Cut the link between an erased referral and what it contributes (`referral.erased`).

    The counts stay: the referral's row and its recipients' rows are kept, with the facts the
    statistics group by, but under a new random id (the old one is what every other service and
    the audit log still know), and every time in them moves by one random shift that keeps the
    months they are counted in and every duration (time to acknowledge, to a decision, in time
    or not), so they cannot be matched by time either. Later events of the old id are dropped.
    False when it was erased before (idempotent)."""
    dialect = session.get_bind().dialect.name
    claimed = await session.exec(
        insert_ignore(dialect, ErasedReferral).values(referral_id=referral_id, erased_at=utcnow())
    )
    if claimed.rowcount == 0:
        return False
    session.info.get(_LIVE, set()).discard(referral_id)
    row = await _fact(session, referral_id)
    deliveries = list((await _recipients(session, referral_id)).values())
    anchors = [row.submitted_at] if row is not None else []
    anchors += [d.routed_at for d in deliveries if d.routed_at is not None]
    shift = _blur(anchors)

    def moved(at: datetime | None) -> datetime | None:
        return None if at is None else at + shift

    new_id = str(uuid.uuid4())
    await session.flush()  # rows this batch made for it, moved to the new id below
    # Out of the session: a later event of the old id in this transaction must find nothing.
    for loaded in [row, *deliveries]:
        if loaded is not None and loaded in session:
            session.expunge(loaded)
    session.info.setdefault(_FACTS, {})[referral_id] = None
    session.info.setdefault(_DELIVERIES, {})[referral_id] = {}
    if row is not None:
        await session.exec(
            update(ReferralFact)
            .where(col(ReferralFact.referral_id) == referral_id)
            .values(
                referral_id=new_id,
                submitted_at=moved(row.submitted_at),
                decided_at=moved(row.decided_at),
            )
        )
    for d in deliveries:
        await session.exec(
            update(DeliveryFact)
            .where(
                col(DeliveryFact.referral_id) == referral_id, col(DeliveryFact.agency) == d.agency
            )
            .values(
                referral_id=new_id,
                routed_at=moved(d.routed_at),
                deadline=moved(d.deadline),
                acknowledged_at=moved(d.acknowledged_at),
                accepted_at=moved(d.accepted_at),
                declined_at=moved(d.declined_at),
            )
        )
    await forget_delivered(session, key=referral_id)
    return True


# Questions


def _month(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m")


def _index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def _shift(month: str, months: int) -> str:
    index = _index(month) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_between(start: str, end: str) -> list[str]:
    out = [start]
    while out[-1] < end:
        out.append(_shift(out[-1], 1))
    return out


COUNT_DIMENSIONS = (
    "month",
    "region",
    "exploitation",
    "destination",
    "agency_type",
    "kind",
    "minor",
    "age_band",
    "sex",
    "citizenship",
)
TIMING_DIMENSIONS = ("month", "agency")
COUNT_MEASURES = (
    "referrals",
    "acknowledged_in_time",
    "accepted",
    "reasonable_grounds",
    "confirmed",
    "investigation_opened",
)
TIMING_MEASURES = ("time_to_acknowledge", "time_to_decide", "time_to_reasonable_grounds")
FUNNEL = "funnel"
MEASURES = (*COUNT_MEASURES, *TIMING_MEASURES, FUNNEL)
STAGES = {
    "submitted": "referrals",
    "acknowledged_in_time": "acknowledged_in_time",
    "accepted": "accepted",
    "reasonable_grounds": "reasonable_grounds",
    "confirmed": "confirmed",
    "investigation_opened": "investigation_opened",
}
"""The NRM funnel: each stage and the count measure it is (the same table, the same numbers)."""
# `stage`: the funnel's one dimension.
DIMENSIONS = tuple(dict.fromkeys((*COUNT_DIMENSIONS, *TIMING_DIMENSIONS, "stage")))
# What each parameter may be on its own (check_question also relates them to each other).
MEASURE_PATTERN = rf"^({'|'.join(MEASURES)})$"
BY_PATTERN = rf"^(({'|'.join(DIMENSIONS)})(,({'|'.join(DIMENSIONS)}))?)?$"


def month_pattern(*, period_months: int, first: bool) -> str:
    """The months, 1970-01 to 2999-12, that a period may start on (`first`) or end on: the
    bounds of the blocks of `period_months` that periods are made of (January on)."""
    months = range(1, 13, period_months) if first else range(period_months, 13, period_months)
    return rf"^(19[7-9][0-9]|2[0-9]{{3}})-({'|'.join(f'{m:02d}' for m in months)})$"


@dataclass(frozen=True)
class Question:
    start: str  # YYYY-MM
    end: str
    by: tuple[str, ...]
    measure: str


@dataclass
class Cell:
    key: Key
    value: float | int | None
    suppressed: bool
    n: int | None = None
    p90: float | None = None


@dataclass
class Answer:
    question: Question
    k: int
    cells: list[Cell]
    total: Cell
    notes: list[str] = field(default_factory=list)


def may_read(principal: Principal, *, coordinator: str) -> None:
    """Analysts, and the coordinator's supervisors; anyone else learns nothing (404)."""
    if Role.ANALYST in principal.roles:
        return
    if Role.SUPERVISOR in principal.roles and principal.agency == coordinator:
        return
    raise NotFound("Not found.")


def check_question(question: Question, *, period_months: int, max_months: int) -> None:
    """Whole calendar months, aligned on the blocks periods are made of; known dimensions."""
    errors: list[dict[str, str]] = []
    if question.measure not in MEASURES:
        errors.append(_error("measure", f"one of {', '.join(MEASURES)}"))
    allowed: tuple[str, ...] = (
        TIMING_DIMENSIONS if question.measure in TIMING_MEASURES else COUNT_DIMENSIONS
    )
    if question.measure == FUNNEL:
        allowed = ("stage",)  # every stage's total: the stages are the one dimension
    for dim in question.by:
        if dim not in allowed:
            errors.append(_error("by", f"{dim!r} is not one of {', '.join(allowed)}"))
    if len(set(question.by)) != len(question.by) or len(question.by) > 2:
        errors.append(_error("by", "at most two different dimensions"))
    for path, month in (("from", question.start), ("to", question.end)):
        if not 1970 <= int(month[:4]) <= 2999:
            errors.append(_error(path, "a month between 1970-01 and 2999-12"))
    if question.start > question.end:
        errors.append(_error("to", "the period ends before it starts"))
    if (int(question.start[5:7]) - 1) % period_months:
        errors.append(
            _error("from", f"periods start on a block of {period_months} months (January on)")
        )
    if int(question.end[5:7]) % period_months:
        errors.append(_error("to", f"periods end on a block of {period_months} months"))
    if _index(question.end) - _index(question.start) + 1 > max_months:
        errors.append(_error("to", f"a period covers at most {max_months} months"))
    if errors:
        raise UnprocessableContent("The question cannot be answered as asked.", errors=errors)


def _error(parameter: str, message: str) -> dict[str, str]:
    """A refused query parameter, named as the schema's own refusals name it (`query/by`)."""
    return {"path": f"query/{parameter}", "type": "value_error", "message": message}


def _blocks(question: Question, period_months: int) -> list[list[str]]:
    months = months_between(question.start, question.end)
    return [months[i : i + period_months] for i in range(0, len(months), period_months)]


async def _domains(
    session: AsyncSession, by: Iterable[str], months: list[str], agency_types: Mapping[str, str]
) -> dict[str, list[str]]:
    """Every category of each dimension, whatever the period: which ones a period holds is
    itself a count (at least one), so the list never depends on it."""
    fixed: dict[str, list[str]] = {
        "month": months,
        "exploitation": [e.value for e in Exploitation] + ["multiple"],
        "agency_type": [t.value for t in AgencyType],
        "kind": [k.value for k in ReferralKind],
        "minor": ["true", "false", "withheld", "not_applicable"],
        "age_band": [a.value for a in AgeBand] + ["withheld", "not_applicable"],
        "sex": [s.value for s in Sex] + ["withheld", "not_applicable"],
    }
    out: dict[str, list[str]] = {}
    for dim in by:
        if dim in fixed:
            out[dim] = fixed[dim]
            continue
        column = {
            "region": ReferralFact.region,
            "destination": ReferralFact.destination,
            "citizenship": ReferralFact.citizenship,
            "agency": DeliveryFact.agency,
        }[dim]
        values = {str(v) for v in await session.exec(select(column).distinct()) if v is not None}
        if dim == "citizenship":
            values |= {"withheld", "not_applicable"}
        if dim == "destination":
            values |= {"none", "multiple"}
        out[dim] = sorted(values)
    return out


def _referral_value(row: ReferralFact, dim: str, agency_types: Mapping[str, str]) -> str:
    if dim == "agency_type":
        return agency_types.get(row.submitted_by, "other")
    if dim in ("minor", "age_band", "sex", "citizenship"):
        # Victim-level attributes: only where the victim consents to statistics.
        if row.kind == "tip":
            return "not_applicable"
        value = getattr(row, dim)
        if not row.statistics_consent or value is None:
            return "withheld"
        return str(value).lower() if dim == "minor" else str(value)
    return str(getattr(row, dim))


@dataclass
class _Unit:
    """What one referral or delivery contributes: its month, its categories, a duration."""

    month: str
    values: dict[str, str]
    hours: float | None = None


async def _referral_units(
    session: AsyncSession,
    question: Question,
    agency_types: Mapping[str, str],
) -> list[_Unit]:
    rows = list(
        await session.exec(
            select(ReferralFact).where(
                col(ReferralFact.month) >= question.start, col(ReferralFact.month) <= question.end
            )
        )
    )
    if question.measure != "referrals":
        ids = [r.referral_id for r in rows] if question.measure in _NEEDS_DELIVERIES else []
        deliveries: dict[str, list[DeliveryFact]] = defaultdict(list)
        for chunk in range(0, len(ids), 500):
            for d in await session.exec(
                select(DeliveryFact).where(
                    col(DeliveryFact.referral_id).in_(ids[chunk : chunk + 500])
                )
            ):
                deliveries[d.referral_id].append(d)
        stage = _FUNNEL[question.measure]
        rows = [r for r in rows if stage(r, deliveries.get(r.referral_id, []))]
    return [
        _Unit(
            r.month, {d: _referral_value(r, d, agency_types) for d in question.by if d != "month"}
        )
        for r in rows
    ]


def _acknowledged_in_time(_: ReferralFact, deliveries: list[DeliveryFact]) -> bool:
    due = [d for d in deliveries if d.deadline is not None]
    return bool(due) and all(
        d.acknowledged_at is not None and d.deadline is not None and d.acknowledged_at <= d.deadline
        for d in due
    )


def _accepted(_: ReferralFact, deliveries: list[DeliveryFact]) -> bool:
    return any(d.accepted_at is not None for d in deliveries)


_FUNNEL: dict[str, Callable[[ReferralFact, list[DeliveryFact]], bool]] = {
    "acknowledged_in_time": _acknowledged_in_time,
    "accepted": _accepted,
    "reasonable_grounds": lambda r, _: r.reasonable_grounds,
    "confirmed": lambda r, _: r.confirmed,
    "investigation_opened": lambda r, _: r.investigation_opened,
}
_NEEDS_DELIVERIES = ("acknowledged_in_time", "accepted")


async def _decision_units(session: AsyncSession, question: Question) -> list[_Unit]:
    """Hours from submission to the reasonable-grounds decision (either way), per referral
    submitted in the period, by the competent authority that decided."""
    rows = await session.exec(
        select(ReferralFact).where(
            col(ReferralFact.month) >= question.start,
            col(ReferralFact.month) <= question.end,
            col(ReferralFact.decided_at).is_not(None),
        )
    )
    units = []
    for r in rows:
        assert r.decided_at is not None
        hours = max(0.0, (r.decided_at - r.submitted_at).total_seconds() / 3600)
        units.append(_Unit(r.month, {"agency": r.authority or "unknown"}, hours))
    return units


async def _delivery_units(session: AsyncSession, question: Question) -> list[_Unit]:
    start = datetime.fromisoformat(f"{question.start}-01T00:00:00+00:00")
    end_month = _shift(question.end, 1)
    end = datetime.fromisoformat(f"{end_month}-01T00:00:00+00:00")
    rows = await session.exec(
        select(DeliveryFact).where(
            col(DeliveryFact.routed_at) >= start, col(DeliveryFact.routed_at) < end
        )
    )
    units = []
    for d in rows:
        assert d.routed_at is not None
        done = d.acknowledged_at
        if question.measure == "time_to_decide":
            done = min((t for t in (d.accepted_at, d.declined_at) if t is not None), default=None)
        if done is None:
            continue
        hours = max(0.0, (done - d.routed_at).total_seconds() / 3600)
        units.append(_Unit(_month(d.routed_at), {"agency": d.agency}, hours))
    return units


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 2)


async def answer(
    session: AsyncSession,
    *,
    question: Question,
    k: int,
    period_months: int,
    agency_types: Mapping[str, str],
) -> Answer:
    """Counts per block, each block protected, then the period: a cell is published where it
    is at least k and no block hides it (module docs of services.insights.disclosure)."""
    if question.measure == FUNNEL:
        return await _funnel(
            session,
            question=question,
            k=k,
            period_months=period_months,
            agency_types=agency_types,
        )
    timing = question.measure in TIMING_MEASURES
    if question.measure == "time_to_reasonable_grounds":
        units = await _decision_units(session, question)
    elif timing:
        units = await _delivery_units(session, question)
    else:
        units = await _referral_units(session, question, agency_types)
    blocks = _blocks(question, period_months)
    domains = await _domains(
        session, question.by, months_between(question.start, question.end), agency_types
    )
    if question.measure == "time_to_reasonable_grounds" and "agency" in domains:
        authorities = select(ReferralFact.authority).distinct()
        domains["agency"] = sorted({str(a) for a in await session.exec(authorities) if a})
    block_of = {m: i for i, block in enumerate(blocks) for m in block}
    ndim = len(question.by)
    counts: list[dict[Key, int]] = []
    for block in blocks:
        keys = _keys(question.by, domains, block)
        counts.append(dict.fromkeys(keys, 0))
    durations: dict[Key, list[float]] = defaultdict(list)
    for unit in units:
        key = tuple(unit.month if d == "month" else unit.values[d] for d in question.by)
        table = counts[block_of[unit.month]]
        if key not in table:  # a category outside the known ones (a new agency type)
            for i, dim in enumerate(question.by):
                if key[i] not in domains[dim]:
                    domains[dim] = sorted([*domains[dim], key[i]])
            for other, block_months in zip(counts, blocks, strict=True):
                for extra in _keys(question.by, domains, block_months):
                    other.setdefault(extra, 0)
        table[key] += 1
        if unit.hours is not None:
            for margin in _with_all(key):
                durations[margin].append(unit.hours)
    hidden = [protect(c, ndim=ndim, k=k) for c in counts]
    totals: dict[Key, int] = defaultdict(int)
    for c in counts:
        for key, value in with_margins(c, ndim).items():
            totals[key] += value

    def cell(key: Key) -> Cell:
        value = totals.get(key, 0)
        shown = published(value, key, hidden, k)
        if not timing:
            return Cell(key, value if shown else None, not shown)
        times = durations.get(key, [])
        return Cell(
            key,
            _nearest_rank(times, 0.5) if shown else None,
            not shown,
            n=value if shown else None,
            p90=_nearest_rank(times, 0.9) if shown else None,
        )

    keys = _keys(question.by, domains, months_between(question.start, question.end))
    notes = []
    if question.measure == "time_to_decide":
        notes.append("hours from routing to acceptance or decline, per recipient agency")
    if question.measure == "time_to_acknowledge":
        notes.append("hours from routing to acknowledgement, per recipient agency")
    if question.measure == "time_to_reasonable_grounds":
        notes.append(
            "hours from submission to the reasonable-grounds decision, per competent authority"
        )
    cells = [cell(key) for key in keys] if ndim else []
    return Answer(question, k, cells, cell((ALL,) * ndim), notes)


async def _funnel(
    session: AsyncSession,
    *,
    question: Question,
    k: int,
    period_months: int,
    agency_types: Mapping[str, str],
) -> Answer:
    """Each stage's total, exactly as its own measure publishes it (protected per block, at
    least k over the period). The stages are separate counts of the same referrals, not parts
    of a whole: no stage is a sum or difference of the others, so a withheld stage cannot be
    recomputed from its neighbours or the total, and no rates are published beside them."""
    cells = []
    for stage, measure in STAGES.items():
        asked = Question(start=question.start, end=question.end, by=(), measure=measure)
        total = (
            await answer(
                session,
                question=asked,
                k=k,
                period_months=period_months,
                agency_types=agency_types,
            )
        ).total
        cells.append(Cell((stage,), total.value, total.suppressed))
    shaped = Question(start=question.start, end=question.end, by=("stage",), measure=FUNNEL)
    notes = ["stages of referrals and tips submitted in the period, each counted on its own"]
    return Answer(shaped, k, cells, cells[0], notes)


def _keys(by: Sequence[str], domains: Mapping[str, list[str]], months: list[str]) -> list[Key]:
    axes = [months if d == "month" else domains[d] for d in by]
    out: list[Key] = [()]
    for axis in axes:
        out = [(*key, value) for key in out for value in axis]
    return out


def _with_all(key: Key) -> list[Key]:
    out: list[Key] = [()]
    for value in key:
        out = [(*k, v) for k in out for v in (value, ALL)]
    return out


def as_json(result: Answer) -> dict[str, Any]:
    q = result.question
    timing = q.measure in TIMING_MEASURES

    def shape(c: Cell, named: bool) -> dict[str, Any]:
        out: dict[str, Any] = dict(zip(q.by, c.key, strict=True)) if named else {}
        out["value"] = c.value
        if timing:
            out["p90"] = c.p90
            out["n"] = c.n
        out["suppressed"] = c.suppressed
        return out

    body: dict[str, Any] = {
        "k": result.k,
        "from": q.start,
        "to": q.end,
        "by": list(q.by),
        "measure": q.measure,
        "cells": [shape(c, True) for c in result.cells],
        "total": shape(result.total, False),
    }
    if result.notes:
        body["notes"] = result.notes
    return body


def as_csv_rows(result: Answer) -> list[list[str]]:
    q = result.question
    timing = q.measure in TIMING_MEASURES
    header = [*q.by, "value"] + (["p90", "n"] if timing else []) + ["suppressed"]

    def row(c: Cell, names: Sequence[str]) -> list[str]:
        values = [*names, "" if c.value is None else str(c.value)]
        if timing:
            values += ["" if c.p90 is None else str(c.p90), "" if c.n is None else str(c.n)]
        return [*values, str(c.suppressed).lower()]

    rows = [header] + [row(c, c.key) for c in result.cells]
    rows.append(row(result.total, ["total"] * len(q.by)))
    return rows
