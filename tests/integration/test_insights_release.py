"""Statistics over time and the differentially private open-data release, on a real database:
overlapping periods isolate no small group, and releases spend a budget they cannot exceed."""

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.broker import EmbeddedBroker
from services.common.db import create_all, create_engine, insert_many, session_factory
from services.insights import service
from services.insights.app import create_app
from services.insights.disclosure import ALL
from services.insights.models import DeliveryFact, ReferralFact, insights_metadata
from services.insights.settings import InsightsSettings
from tests.support import Database
from tests.tokens import AUDIENCE, ISSUER, TokenMint

REGIONS = ("KZ-11", "KZ-39", "KZ-79")


def row(month: str, region: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "referral_id": str(uuid.uuid4()),
        "submitted_at": datetime.fromisoformat(f"{month}-15T12:00:00+00:00"),
        "month": month,
        "kind": "victim_referral",
        "region": region,
        "exploitation": "sexual",
        "destination": "none",
        "submitted_by": "labour-insp",
        "minor": False,
        "statistics_consent": True,
        "age_band": "24-26",
        "sex": "female",
        "citizenship": "KZ",
        "withdrawn": False,
    }
    return values | extra


MONTHS = [f"2025-{m:02d}" for m in range(1, 9)]


async def _periods_answers(
    path: Path, counts: dict[tuple[str, str], int], period_months: int, k: int
) -> dict[tuple[str, str], dict[tuple[str, ...], int | None]]:
    """The question "referrals by region" for every block-aligned period of MONTHS."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await create_all(engine, insights_metadata)
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            rows = [row(m, r) for (m, r), n in counts.items() for _ in range(n)]
            await insert_many(session, ReferralFact, rows)
        starts = MONTHS[::period_months]
        ends = MONTHS[period_months - 1 :: period_months]
        out = {}
        async with sessions() as session:
            for i, j in itertools.combinations_with_replacement(range(len(starts)), 2):
                q = service.Question(
                    start=starts[i], end=ends[j], by=("region",), measure="referrals"
                )
                answer = await service.answer(
                    session, question=q, k=k, period_months=period_months, agency_types={}
                )
                cells = {c.key: c.value for c in answer.cells}
                cells[("total",)] = answer.total.value
                out[(starts[i], ends[j])] = {key: _int(v) for key, v in cells.items()}
        return out
    finally:
        await engine.dispose()


def _int(value: float | int | None) -> int | None:
    assert value is None or isinstance(value, int)
    return value


def isolated(
    answers: dict[tuple[str, str], dict[tuple[str, ...], int | None]],
) -> list[tuple[Any, ...]]:
    """Groups of 1 to k-1 referrals that two overlapping periods single out: where a period
    contains another (as the overlap of any two periods is itself a period) and both publish
    a count, their difference counts the referrals of the months in one and not the other."""
    found = []
    for (outer, a1), (inner, a2) in itertools.permutations(answers.items(), 2):
        if not (outer[0] <= inner[0] and inner[1] <= outer[1]):
            continue
        for key, v1 in a1.items():
            v2 = a2[key]
            if v1 is not None and v2 is not None and 0 < v1 - v2 < 11:
                found.append((outer, inner, key, v1, v2))
    return found


@settings(max_examples=20, deadline=None)
@given(
    counts=st.lists(st.integers(0, 14), min_size=24, max_size=24),
    period_months=st.sampled_from([1, 2, 4]),
)
def test_overlapping_periods_isolate_no_group_smaller_than_k(
    tmp_path_factory: Any, counts: list[int], period_months: int
) -> None:
    """The same question for two overlapping periods: wherever both publish a count, the two
    differ by zero or by at least k, so no fewer than k referrals can be singled out."""
    table = {
        (month, region): counts[m * 3 + i]
        for m, month in enumerate(MONTHS)
        for i, region in enumerate(REGIONS)
    }
    path = tmp_path_factory.mktemp("periods") / "insights.db"
    answers = asyncio.run(_periods_answers(path, table, period_months, 11))
    assert all(v is None or v >= 11 for a in answers.values() for v in a.values())
    assert isolated(answers) == []


def test_a_small_month_is_not_recoverable_from_two_periods(tmp_path: Path) -> None:
    """KZ-79 had 20 referrals in January and 3 in February. January alone (20) and January to
    February (23) would single out February's 3: the longer period withholds KZ-79, as
    February's own table does."""
    table = {(m, r): 0 for m in MONTHS for r in REGIONS}
    table |= {("2025-01", "KZ-79"): 20, ("2025-02", "KZ-79"): 3}
    table |= {("2025-01", "KZ-39"): 30, ("2025-02", "KZ-39"): 30}
    table |= {("2025-01", "KZ-11"): 12, ("2025-02", "KZ-11"): 12}
    answers = asyncio.run(_periods_answers(tmp_path / "insights.db", table, 1, 11))
    assert answers[("2025-01", "2025-01")] == {
        ("KZ-11",): 12,
        ("KZ-39",): 30,
        ("KZ-79",): 20,
        ("total",): 62,
    }
    # February: 3 is below k, and the smallest other count (12) goes with it.
    assert answers[("2025-02", "2025-02")] == {
        ("KZ-11",): None,
        ("KZ-39",): 30,
        ("KZ-79",): None,
        ("total",): 45,
    }
    assert answers[("2025-01", "2025-02")] == {
        ("KZ-11",): None,
        ("KZ-39",): 60,
        ("KZ-79",): None,
        ("total",): 107,
    }
    assert isolated(answers) == []


async def _timing_answer(path: Path, hours: dict[str, list[int]]) -> service.Answer:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await create_all(engine, insights_metadata)
        sessions = session_factory(engine)
        routed = datetime(2025, 2, 3, tzinfo=UTC)
        async with sessions.begin() as session:
            rows = [
                {
                    "referral_id": str(uuid.uuid4()),
                    "agency": agency,
                    "routed_at": routed,
                    "deadline": routed + timedelta(hours=24),
                    "acknowledged_at": routed + timedelta(hours=h),
                    "accepted_at": None,
                    "declined_at": None,
                }
                for agency, times in hours.items()
                for h in times
            ]
            await insert_many(session, DeliveryFact, rows)
        q = service.Question(
            start="2025-01", end="2025-03", by=("agency",), measure="time_to_acknowledge"
        )
        async with sessions() as session:
            return await service.answer(session, question=q, k=11, period_months=3, agency_types={})
    finally:
        await engine.dispose()


@settings(max_examples=25, deadline=None)
@given(
    hours=st.dictionaries(
        st.sampled_from(["gp", "mvd-ctu", "ngo-north", "ngo-south"]),
        st.lists(st.integers(0, 100), max_size=30),
        min_size=1,
    )
)
def test_percentiles_are_withheld_for_groups_below_k(tmp_path_factory: Any, hours) -> None:
    """A median or 90th percentile is published only with its group's count, which is at least
    k and not recoverable (the counts are protected like any other table)."""
    path = tmp_path_factory.mktemp("timing") / "insights.db"
    answer = asyncio.run(_timing_answer(path, hours))
    for cell in [*answer.cells, answer.total]:
        agency = cell.key[0]
        n = sum(len(v) for v in hours.values()) if agency == ALL else len(hours.get(agency, []))
        if n < 11:
            assert (cell.value, cell.p90, cell.n, cell.suppressed) == (None, None, None, True)
        if not cell.suppressed:
            assert cell.n == n and cell.value is not None and cell.p90 is not None
            times = sorted(t for a, ts in hours.items() if agency in (ALL, a) for t in ts)
            assert cell.value == times[(n + 1) // 2 - 1]  # nearest rank
            assert cell.p90 == times[-(-9 * n // 10) - 1]


async def test_a_category_outside_the_vocabulary_is_counted(tmp_path: Path) -> None:
    """An agency type the configuration adds later is a category like the others."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/insights.db")
    try:
        await create_all(engine, insights_metadata)
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            rows = [row("2025-01", "KZ-79") for _ in range(12)]
            rows += [row("2025-01", "KZ-79", submitted_by="ombudsman-1") for _ in range(20)]
            await insert_many(session, ReferralFact, rows)
        q = service.Question(
            start="2025-01", end="2025-03", by=("agency_type",), measure="referrals"
        )
        async with sessions() as session:
            answer = await service.answer(
                session,
                question=q,
                k=11,
                period_months=3,
                agency_types={"labour-insp": "labour_inspectorate", "ombudsman-1": "ombudsman"},
            )
        values = {c.key: c.value for c in answer.cells}
        assert values[("labour_inspectorate",)] == 12
        assert values[("ombudsman",)] == 20
        assert values[("police",)] is None and answer.total.value == 32
    finally:
        await engine.dispose()


# The NRM funnel


def funnel_rows(month: str, plan: dict[str, int]) -> tuple[list[dict[str, Any]], list[Any]]:
    """`plan["submitted"]` referrals of `month`, the first n of which reached each stage."""
    referrals, deliveries = [], []
    routed = datetime.fromisoformat(f"{month}-15T12:00:00+00:00")
    for i in range(plan["submitted"]):
        r = row(
            month,
            "KZ-79",
            reasonable_grounds=i < plan["reasonable_grounds"],
            confirmed=i < plan["confirmed"],
            investigation_opened=i < plan["investigation_opened"],
        )
        referrals.append(r)
        hours = 2 if i < plan["acknowledged_in_time"] else 30  # deadline 24 h
        deliveries.append(
            {
                "referral_id": r["referral_id"],
                "agency": "ngo-south",
                "routed_at": routed,
                "deadline": routed + timedelta(hours=24),
                "acknowledged_at": routed + timedelta(hours=hours),
                "accepted_at": routed + timedelta(hours=40) if i < plan["accepted"] else None,
                "declined_at": None,
            }
        )
    return referrals, deliveries


async def _funnels(
    path: Path, months: dict[str, dict[str, int]], periods: list[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, int | None]]:
    """The funnel (k = 5, blocks of one month) for each period."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await create_all(engine, insights_metadata)
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            for month, plan in months.items():
                referrals, deliveries = funnel_rows(month, plan)
                await insert_many(session, ReferralFact, referrals)
                await insert_many(session, DeliveryFact, deliveries)
        out = {}
        async with sessions() as session:
            for start, end in periods:
                q = service.Question(start=start, end=end, by=(), measure="funnel")
                answer = await service.answer(
                    session, question=q, k=5, period_months=1, agency_types={}
                )
                assert all(c.suppressed == (c.value is None) for c in answer.cells)
                out[(start, end)] = {c.key[0]: _int(c.value) for c in answer.cells}
        return out
    finally:
        await engine.dispose()


JANUARY = {
    "submitted": 12,
    "acknowledged_in_time": 10,
    "accepted": 7,
    "reasonable_grounds": 9,
    "confirmed": 6,
    "investigation_opened": 2,
}
FEBRUARY = {
    "submitted": 8,
    "acknowledged_in_time": 8,
    "accepted": 5,
    "reasonable_grounds": 3,
    "confirmed": 0,
    "investigation_opened": 0,
}
PERIODS = [("2025-01", "2025-01"), ("2025-02", "2025-02"), ("2025-01", "2025-02")]


async def test_the_funnel_withholds_small_stages_in_every_period(tmp_path: Path) -> None:
    """k = 5, monthly blocks. January's two opened investigations and February's three
    reasonable-grounds decisions (and its zeros) are withheld; over January and February the
    reasonable-grounds stage (12) is withheld too, as February hides its part, and the
    investigations (2) stay withheld: a stage's count is never 0 when it is below k."""
    answers = await _funnels(tmp_path / "a.db", {"2025-01": JANUARY, "2025-02": FEBRUARY}, PERIODS)
    assert answers == {
        ("2025-01", "2025-01"): {
            "submitted": 12,
            "acknowledged_in_time": 10,
            "accepted": 7,
            "reasonable_grounds": 9,
            "confirmed": 6,
            "investigation_opened": None,
        },
        ("2025-02", "2025-02"): {
            "submitted": 8,
            "acknowledged_in_time": 8,
            "accepted": 5,
            "reasonable_grounds": None,
            "confirmed": None,
            "investigation_opened": None,
        },
        ("2025-01", "2025-02"): {
            "submitted": 20,
            "acknowledged_in_time": 18,
            "accepted": 12,
            "reasonable_grounds": None,
            "confirmed": 6,
            "investigation_opened": None,
        },
    }


async def test_a_withheld_stage_cannot_be_told_from_its_neighbours(tmp_path: Path) -> None:
    """Two populations that differ only in a withheld stage (February's reasonable grounds: 3
    or 1; January's investigations: 2 or 4) publish exactly the same funnels for every
    period: nothing published, neighbours and totals included, tells them apart."""
    other = {
        "2025-01": JANUARY | {"investigation_opened": 4},
        "2025-02": FEBRUARY | {"reasonable_grounds": 1},
    }
    first = await _funnels(tmp_path / "a.db", {"2025-01": JANUARY, "2025-02": FEBRUARY}, PERIODS)
    second = await _funnels(tmp_path / "b.db", other, PERIODS)
    assert first == second


# The open-data release


SYNTHETIC: dict[str, dict[str, int]] = {
    # 10,000 consenting victims' referrals in 2025, by each released field.
    "gender": {"female": 6000, "male": 3500, "unknown": 500},
    "ageBroad": {"18-20": 1500, "21-23": 2500, "24-26": 3000, "30-38": 2000, "9-17": 1000},
    "citizenship": {"KZ": 7000, "UZ": 2000, "KG": 1000},
    "typeOfExploit": {"sexual": 5000, "labour": 4000, "multiple": 1000},
}
FIELDS = {"gender": "sex", "ageBroad": "age_band", "citizenship": "citizenship"}
FIELDS["typeOfExploit"] = "exploitation"


def synthetic_rows() -> list[dict[str, Any]]:
    """Each field's values laid out in runs, at a different stride per field so the fields
    mix; every field's counts are exactly SYNTHETIC's."""
    columns: dict[str, list[str]] = {}
    for field, counts in SYNTHETIC.items():
        values = [v for v, n in counts.items() for _ in range(n)]
        stride = {"gender": 1, "ageBroad": 7, "citizenship": 13, "typeOfExploit": 17}[field]
        columns[FIELDS[field]] = [values[(i * stride) % 10_000] for i in range(10_000)]
    months = [f"2025-{m:02d}" for m in range(1, 13)]
    rows = [
        row(months[i % 12], REGIONS[i % 3], **{c: columns[c][i] for c in columns})
        for i in range(10_000)
    ]
    # Not in the population: a tip, a victim without consent to statistics, another year.
    rows.append(row("2025-05", "KZ-79", kind="tip", sex=None, age_band=None, citizenship=None))
    rows.append(row("2025-05", "KZ-79", statistics_consent=False, sex=None, citizenship=None))
    rows.append(row("2024-12", "KZ-79"))
    return rows


async def test_releases_differ_stay_accurate_and_spend_a_capped_budget(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    # The strides must keep each field's counts: check the synthetic data itself first.
    rows = synthetic_rows()
    population = [
        r for r in rows if r["month"].startswith("2025") and r["kind"] == "victim_referral"
    ]
    population = [r for r in population if r["statistics_consent"]]
    assert len(population) == 10_000
    for field, counts in SYNTHETIC.items():
        for value, n in counts.items():
            assert sum(1 for r in population if r[FIELDS[field]] == value) == n

    await create_all(db.engine, insights_metadata)
    async with db.sessions.begin() as session:
        await insert_many(session, ReferralFact, rows)
    mint = TokenMint()
    analyst = mint.headers("analyst", "analyst")
    app_settings = InsightsSettings(
        data_dir=tmp_path,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        release_epsilon=1.0,
        epsilon_budget=2.0,
        release_confidence=0.95,
    )
    app = create_app(app_settings, bootstrap=own_broker.bootstrap, engine=db.engine, jwks=mint.jwks)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://insights") as client:
            r = await client.post(
                "/v1/statistics/releases",
                json={"year": 2025},
                headers=mint.headers("ngo-south", "supervisor"),
            )
            assert r.status_code == 404  # spending the budget is the analyst's alone

            releases = []
            for _ in range(2):
                r = await client.post(
                    "/v1/statistics/releases", json={"year": 2025}, headers=analyst
                )
                assert r.status_code == 201, r.text
                releases.append(r.json())
            # ε = 1 each against a budget of 2 for 2025: a third release is refused.
            r = await client.post("/v1/statistics/releases", json={"year": 2025}, headers=analyst)
            assert r.status_code == 409
            assert r.headers["content-type"] == "application/problem+json"
            assert (r.json()["epsilon_spent"], r.json()["epsilon_budget"]) == (2.0, 2.0)
            # Another year's budget is its own.
            r = await client.post("/v1/statistics/releases", json={"year": 2024}, headers=analyst)
            assert r.status_code == 201
            assert r.json()["total"]["value"] >= 0

            # Public: anyone reads a release as it was published.
            listed = (await client.get("/v1/open-data/releases")).json()
            assert [x["year"] for x in listed] == [2025, 2025, 2024]
            again = await client.get(f"/v1/open-data/releases/{releases[0]['id']}")
            assert again.json() == releases[0]
            assert (await client.get("/v1/open-data/releases/nope")).status_code == 404

    first, second = releases
    for release in releases:
        privacy = release["privacy"]
        assert (privacy["epsilon"], privacy["delta"]) == (1.0, 0.0)
        assert privacy["epsilon_per_measurement"] == 0.2  # a total and four tables
        assert release["accuracy"]["confidence"] == 0.95
        for name, table in release["tables"].items():
            values = [c["value"] for c in table["cells"]]
            # Post-processed: non-negative integers adding up to the released total.
            assert all(isinstance(v, int) and v >= 0 for v in values), name
            assert sum(values) == table["total"] == release["total"]["value"], name
    # Noise is real: the two releases of the same data differ.
    assert first["tables"] != second["tables"]
    assert first["total"] != second["total"] or first["tables"] != second["tables"]

    # Within the published accuracy: each count at 95 %, so nearly all. Of the 30 counts with
    # a true value above zero (two releases, a total and 14 cells each), at least 70 % must be
    # within (fails by chance with probability about 1e-6); of all 548 cells, at least 90 %.
    inside = []
    inside_all = []
    for release in releases:
        total = release["total"]
        inside.append(abs(total["value"] - 10_000) <= total["accuracy"])
        for name, table in release["tables"].items():
            for cell in table["cells"]:
                truth = SYNTHETIC[name].get(cell["category"], 0)
                within = abs(cell["value"] - truth) <= table["accuracy"]
                inside_all.append(within)
                if truth:
                    inside.append(within)
    assert len(inside) == 30
    assert sum(inside) >= 0.7 * len(inside), inside
    assert sum(inside_all) >= 0.9 * len(inside_all)
