"""Statistics endpoints: aggregate questions (analysts, the coordinator's supervisors) and the
open-data releases (public to read; analysts spend the privacy budget)."""

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events import AccessGranted
from services.common.auth import Principal, require
from services.common.body import json_media
from services.common.deps import ReadSession, Runtime, WriteSession, from_state
from services.common.permissions import Action
from services.common.runtime import ServiceRuntime
from services.insights import release as releases
from services.insights import repository, service
from services.insights.schemas import (
    ReleaseRequest,
    ReleaseSummary,
)
from services.insights.settings import InsightsSettings

router = APIRouter(prefix="/v1/statistics", tags=["statistics"], dependencies=[Depends(json_media)])
open_data = APIRouter(prefix="/v1/open-data", tags=["open data"])

Reader = Annotated[Principal, Depends(require(Action.STATISTICS_READ))]
Releaser = Annotated[Principal, Depends(require(Action.STATISTICS_RELEASE))]
Config = Annotated[InsightsSettings, Depends(from_state("settings", InsightsSettings))]
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


async def _record(
    runtime: ServiceRuntime,
    principal: Principal,
    action: str,
    resource: str,
    *,
    session: AsyncSession | None = None,
) -> None:
    await runtime.access_audit.emit(
        AccessGranted(
            action=action,
            resource_type="statistics",
            resource_id=resource[:200],
            agency=principal.agency,
            client_id=principal.client_id,
        ),
        agency=principal.agency,
        session=session,
    )


@router.get(
    "",
    summary="Aggregate counts (or times) with small-cell suppression, as JSON or CSV",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def statistics(
    request: Request,
    principal: Reader,
    runtime: Runtime,
    settings: Config,
    from_: Annotated[str, Query(alias="from", pattern=MONTH, examples=["2026-01"])],
    to: Annotated[str, Query(pattern=MONTH, examples=["2026-03"])],
    by: Annotated[str, Query(max_length=100, pattern=service.BY_PATTERN)] = "",
    measure: Annotated[str, Query(pattern=service.MEASURE_PATTERN)] = "referrals",
) -> Response:
    service.may_read(principal, coordinator=settings.coordinator_agency)
    question = service.Question(
        start=from_, end=to, by=tuple(d for d in by.split(",") if d), measure=measure
    )
    service.check_question(
        question, period_months=settings.period_months, max_months=settings.max_period_months
    )
    # Closed before the access record's own transaction: one connection at a time.
    async with runtime.sessions() as session:
        result = await service.answer(
            session,
            question=question,
            k=settings.k,
            period_months=settings.period_months,
            agency_types=settings.agency_types,
        )
    await _record(runtime, principal, "statistics.read", str(request.url.query))
    if "text/csv" in request.headers.get("accept", ""):
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(service.as_csv_rows(result))
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return JSONResponse(service.as_json(result))


def state_periods(document: dict[str, Any], *, period_months: int) -> dict[str, Any]:
    """The document with `from` and `to` of the statistics saying which months they may be in
    this deployment (the blocks are configured: NRM_INSIGHTS_PERIOD_MONTHS)."""
    for parameter in document["paths"]["/v1/statistics"]["get"]["parameters"]:
        if parameter["name"] in ("from", "to"):
            first = parameter["name"] == "from"
            pattern = service.month_pattern(period_months=period_months, first=first)
            parameter["schema"]["pattern"] = pattern
    return document


@router.post(
    "/releases",
    status_code=201,
    summary="Publish a differentially private open-data release of a year (spends ε)",
    responses={409: {"description": "The year's privacy budget would be exceeded"}},
)
async def create_release(
    principal: Releaser,
    runtime: Runtime,
    settings: Config,
    body: ReleaseRequest,
    session: WriteSession,
) -> dict[str, Any]:
    service.may_read(principal, coordinator=settings.coordinator_agency)
    made = await releases.create_release(
        session,
        year=body.year,
        epsilon=settings.release_epsilon,
        budget=settings.epsilon_budget,
        confidence=settings.release_confidence,
        actor=principal.client_id,
    )
    # In the same transaction: the release and its record commit together.
    await _record(runtime, principal, "statistics.release", made.id, session=session)
    return releases.public(made)


@open_data.get("/releases", summary="Open-data releases (public)")
async def list_releases(session: ReadSession) -> list[ReleaseSummary]:
    return [
        ReleaseSummary(
            id=r.id,
            year=r.year,
            epsilon=r.epsilon,
            delta=r.delta,
            created_at=r.created_at.isoformat(),
        )
        for r in await repository.releases(session)
    ]


@open_data.get("/releases/{release_id}", summary="One open-data release (public)")
async def get_release(
    session: ReadSession, release_id: Annotated[str, Path(max_length=36)]
) -> dict[str, Any]:
    row = await repository.release(session, release_id=release_id)
    return releases.public(row)
