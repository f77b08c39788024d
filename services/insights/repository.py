"""Insights' queries. Who may read which rows: the open-data releases are public (anyone);
the statistics themselves are read through `service` under disclosure control."""

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.errors import NotFound
from services.insights.models import Release


async def releases(session: AsyncSession) -> list[Release]:
    """Every open-data release, oldest first."""
    return list(await session.exec(select(Release).order_by(col(Release.created_at))))


async def release(session: AsyncSession, *, release_id: str) -> Release:
    row = await session.get(Release, release_id)
    if row is None:
        raise NotFound("No such release.")
    return row
