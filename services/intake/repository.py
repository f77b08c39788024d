"""Intake's queries. Who may see which referral is decided in one place: `readable_referrals`
(the statement) with `may_read` (what SQL cannot say portably), which the list and every read
of one referral (`service.visible`) start from."""

from datetime import datetime
from typing import Any

from sqlalchemy import false, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from services.common.pagination import Key, Page, paginate
from services.intake.models import Recipient, Recusal, Referral

# The order of a list cursor's key (services.common.pagination.cursor_key): the referral id.
CURSOR = (str,)


def implicated(row: Referral) -> list[str]:
    return list(row.facts.get("implicated", []))


def readable_referrals(
    *, agency: str, as_submitter: bool, as_recipient: bool, person: str | None
) -> SelectOfScalar[Referral]:
    """The referrals a caller may read, erased ones aside: its agency's submissions (as a
    submitter), those routed to its agency (as a recipient); for a person, less those they
    recused themselves from. `may_read` then sets aside the implicated agencies'."""
    scopes: list[Any] = []
    if as_submitter:
        scopes.append(col(Referral.submitted_by) == agency)
    if as_recipient:
        routed = select(col(Recipient.referral_id)).where(col(Recipient.agency) == agency)
        scopes.append(col(Referral.id).in_(routed))
    query = select(Referral).where(
        or_(*scopes) if scopes else false(), col(Referral.status) != "erased"
    )
    if person:
        recused = select(col(Recusal.referral_id)).where(col(Recusal.subject) == person)
        query = query.where(col(Referral.id).not_in(recused))
    return query


def may_read(row: Referral, *, agency: str, as_submitter: bool) -> bool:
    """An agency named as implicated reads nothing of the referral (unless it submitted it):
    the names are inside the referral's JSON facts, which SQL reads differently per database."""
    return (as_submitter and row.submitted_by == agency) or agency not in implicated(row)


async def list_referrals(
    session: AsyncSession,
    *,
    agency: str,
    as_submitter: bool,
    as_recipient: bool,
    person: str | None,
    status: str | None,
    urgency: str | None,
    region: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: Key | None,
    limit: int,
) -> Page[Referral]:
    """Newest first (ids are UUIDv7). A page may hold fewer than `limit` referrals: those of an
    implicated agency are left out after the fetch, and the cursor goes on past them."""
    query = readable_referrals(
        agency=agency, as_submitter=as_submitter, as_recipient=as_recipient, person=person
    )
    if status:
        query = query.where(col(Referral.status) == status)
    if urgency:
        query = query.where(col(Referral.urgency) == urgency)
    if region:
        query = query.where(col(Referral.region) == region)
    if since:
        query = query.where(col(Referral.created_at) >= since)
    if until:
        query = query.where(col(Referral.created_at) < until)
    page = await paginate(
        session,
        query,
        order=(col(Referral.id),),
        key=lambda r: (r.id,),
        cursor=cursor,
        limit=limit,
        descending=True,
    )
    readable = [r for r in page.items if may_read(r, agency=agency, as_submitter=as_submitter)]
    return Page(readable, page.next_cursor)
