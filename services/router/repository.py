"""Router's queries. Who may read which rows: a referral's escalations are its submitter's
only, and no one's once it is erased (`readable_referral`)."""

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.errors import NotFound
from services.router.models import Escalation, RoutedReferral


async def readable_referral(
    session: AsyncSession, *, referral_id: str, agency: str
) -> RoutedReferral:
    """The referral if `agency` submitted it and it is not erased; NotFound otherwise."""
    referral = await session.get(RoutedReferral, referral_id)
    if referral is None or referral.submitted_by != agency or referral.erased_at is not None:
        raise NotFound("No such referral.")
    return referral


async def escalations(session: AsyncSession, *, referral_id: str, agency: str) -> list[Escalation]:
    """The escalations of a referral `agency` submitted, oldest first."""
    await readable_referral(session, referral_id=referral_id, agency=agency)
    rows = await session.exec(
        select(Escalation)
        .where(Escalation.referral_id == referral_id)
        .order_by(col(Escalation.created_at))
    )
    return list(rows)
