"""Open data with differential privacy: the yearly release, made with OpenDP, and its ledger.

Each release measures a total and one-way tables named after the Human Trafficking Case Data
Standard's aggregate fields, over a year's victim referrals whose victims consented to
statistics. Noise is OpenDP's discrete Laplace; its scale follows from the sensitivity OpenDP
derives and the ε share of each measurement, checked with OpenDP's privacy map (the release's
ε split equally; basic composition, δ = 0). The noisy counts are then post-processed (no
further privacy cost) into non-negative integers that add up to the noisy total, and each
table states its accuracy at the configured confidence.
"""

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import opendp.prelude as dp
import pycountry
from opendp.accuracy import discrete_laplacian_scale_to_accuracy
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from uuid6 import uuid7

from contracts.vocabulary import AgeBand, Exploitation, Sex
from services.common.errors import Conflict
from services.insights.models import ReferralFact, Release

# make_count_by_categories is in OpenDP's "contrib" set (proven, not yet vetted externally).
dp.enable_features("contrib")

UNIT = "referral"
"""Privacy unit: one referral added or removed (a person referred twice counts twice)."""


def _tables() -> dict[str, tuple[str, list[str]]]:
    """HTCDS field → (projection attribute, every category, fixed before seeing data)."""
    countries = sorted(c.alpha_2 for c in pycountry.countries)
    return {
        "gender": ("sex", [s.value for s in Sex]),
        "ageBroad": ("age_band", [a.value for a in AgeBand]),
        "citizenship": ("citizenship", [*countries, "unknown"]),
        "typeOfExploit": ("exploitation", [e.value for e in Exploitation] + ["multiple"]),
    }


async def spent(session: AsyncSession, *, year: int) -> float:
    total = (
        await session.exec(select(func.sum(Release.epsilon)).where(Release.year == year))
    ).one()
    return float(total or 0.0)


async def create_release(
    session: AsyncSession,
    *,
    year: int,
    epsilon: float,
    budget: float,
    confidence: float,
    actor: str,
) -> Release:
    """Spend `epsilon` of `year`'s budget on a new release; refused (409) past the budget."""
    already = await spent(session, year=year)
    if already + epsilon > budget + 1e-9:
        raise Conflict(
            f"The privacy budget for {year} would be exceeded: {already:g} of ε = {budget:g} "
            f"is spent and a release costs {epsilon:g}.",
            epsilon_spent=already,
            epsilon_budget=budget,
        )
    rows = list(
        await session.exec(
            select(ReferralFact).where(
                col(ReferralFact.month) >= f"{year:04d}-01",
                col(ReferralFact.month) <= f"{year:04d}-12",
                ReferralFact.kind == "victim_referral",
                col(ReferralFact.statistics_consent).is_(True),
            )
        )
    )
    tables = _tables()
    share = epsilon / (len(tables) + 1)
    alpha = 1 - confidence
    records = ["x"] * len(rows)
    total_scale, noisy_total = _measure_total(records, share)
    total = max(0, noisy_total)
    released: dict[str, Any] = {}
    for name, (attribute, categories) in tables.items():
        values = [_category(getattr(r, attribute), categories) for r in rows]
        scale, noisy = _measure_table(values, categories, share)
        counts = consistent_counts(noisy, total)
        released[name] = {
            "field": name,
            "cells": [{"category": c, "value": v} for c, v in zip(categories, counts, strict=True)],
            "total": total,
            "accuracy": round(discrete_laplacian_scale_to_accuracy(scale, alpha), 2),
            "scale": scale,
            "epsilon": share,
        }
    release = Release(
        id=str(uuid7()),
        year=year,
        epsilon=epsilon,
        delta=0.0,
        created_by=actor,
        created_at=datetime.now(UTC),
    )
    release.content = {
        "id": release.id,
        "year": year,
        "created_at": release.created_at.isoformat(),
        "standard": "Human Trafficking Case Data Standard (aggregate fields)",
        "population": "victim referrals submitted in the year whose victims consented to "
        "statistics",
        "unit": UNIT,
        "privacy": {
            "library": f"OpenDP {dp.__version__}" if hasattr(dp, "__version__") else "OpenDP",
            "mechanism": "discrete Laplace",
            "epsilon": epsilon,
            "delta": 0.0,
            "epsilon_per_measurement": share,
            "composition": "basic (sequential): the total and each table spend an equal share",
            "epsilon_spent_for_year": already + epsilon,
            "epsilon_budget_for_year": budget,
        },
        "accuracy": {
            "confidence": confidence,
            "meaning": "each noisy count is within ± accuracy of the true count with this "
            "probability, before post-processing to non-negative integers consistent with "
            "the total",
        },
        "total": {
            "value": total,
            "accuracy": round(discrete_laplacian_scale_to_accuracy(total_scale, alpha), 2),
        },
        "tables": released,
    }
    session.add(release)
    return release


def _category(value: str | None, categories: Sequence[str]) -> str:
    if value is None or value not in categories:
        return categories[-1] if "unknown" in categories[-1:] else "unknown"
    return value


def _calibrated(transformation: dp.Transformation, epsilon: float) -> tuple[dp.Measurement, float]:
    """Discrete Laplace noise after `transformation`, its scale from the sensitivity OpenDP
    derives (one referral more or less) and checked against ε with OpenDP's privacy map."""
    sensitivity = float(transformation.map(1))  # type: ignore[no-untyped-call]
    scale = sensitivity / epsilon
    while True:
        measurement: dp.Measurement = transformation >> dp.m.then_laplace(scale)
        if measurement.map(1) <= epsilon:  # type: ignore[no-untyped-call]
            return measurement, scale
        scale *= 1 + 1e-9  # OpenDP rounds its privacy arithmetic up


def _measure_total(records: list[str], epsilon: float) -> tuple[float, int]:
    count = dp.t.make_count(dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance())
    measurement, scale = _calibrated(count, epsilon)
    return scale, int(measurement(records))


def _measure_table(
    values: list[str], categories: list[str], epsilon: float
) -> tuple[float, list[int]]:
    counts = dp.t.make_count_by_categories(
        input_domain=dp.vector_domain(dp.atom_domain(T=str)),
        input_metric=dp.symmetric_distance(),
        categories=categories,
        null_category=False,
    )
    measurement, scale = _calibrated(counts, epsilon)
    return scale, [int(v) for v in measurement(values)]


def consistent_counts(noisy: Sequence[int], total: int) -> list[int]:
    """Post-processing: the closest non-negative vector summing to `total` (Euclidean
    projection onto the simplex), rounded to integers by largest remainder."""
    if total <= 0 or not noisy:
        return [0] * len(noisy)
    ordered = sorted(noisy, reverse=True)
    running = 0.0
    tau = 0.0
    for j, value in enumerate(ordered, start=1):
        running += value
        candidate = (running - total) / j
        if value - candidate > 0:
            tau = candidate
    projected = [max(v - tau, 0.0) for v in noisy]
    floors = [math.floor(v) for v in projected]
    short = total - sum(floors)
    by_remainder = sorted(range(len(noisy)), key=lambda i: (floors[i] - projected[i], i))
    for i in by_remainder[:short]:
        floors[i] += 1
    return floors


def public(release: Release) -> dict[str, Any]:
    return dict(release.content)
