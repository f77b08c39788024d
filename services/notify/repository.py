"""Notify's queries. Who may see which delivery is decided in one place, `readable_deliveries`,
which the inbox, a single delivery, the overdue list and the live stream all start from."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from contracts.vocabulary import DeliveryStatus
from services.common.errors import NotFound
from services.common.models import utcnow
from services.common.pagination import Key, Page, paginate
from services.notify.models import (
    Delivery,
    DeliveryChange,
    DispatchAttempt,
    EmailRecipients,
    Recusal,
    Webhook,
)

OPEN = (DeliveryStatus.PENDING, DeliveryStatus.NOTIFIED)  # the deadline clock runs on these


def _recused(person: str) -> Any:
    """The ids of the referrals `person` recused themselves from (a subquery)."""
    return select(Recusal.referral_id).where(Recusal.subject == person)


def readable_deliveries(*, agency: str | None, person: str | None) -> SelectOfScalar[Delivery]:
    """The deliveries a caller may see: its agency's (`None`: every agency's, for the national
    coordinator's oversight), less those of referrals the person recused themselves from."""
    query = select(Delivery)
    if agency is not None:
        query = query.where(Delivery.agency == agency)
    if person:
        query = query.where(col(Delivery.referral_id).not_in(_recused(person)))
    return query


def _late(now: datetime) -> Any:
    return and_(col(Delivery.status).in_([s.value for s in OPEN]), col(Delivery.deadline) < now)


async def inbox(
    session: AsyncSession,
    *,
    agency: str,
    person: str | None = None,
    statuses: Sequence[str] = (),
    urgency: str | None = None,
    overdue: bool | None = None,
    referral_id: str | None = None,
    cursor: Key | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> Page[Delivery]:
    """The agency's deliveries, newest first."""
    query = readable_deliveries(agency=agency, person=person)
    if referral_id:
        query = query.where(Delivery.referral_id == referral_id)
    if statuses:
        query = query.where(col(Delivery.status).in_(statuses))
    if urgency:
        query = query.where(Delivery.urgency == urgency)
    if overdue is not None:
        late = _late(now or utcnow())
        query = query.where(late if overdue else ~late)
    return await paginate(
        session,
        query,
        order=(col(Delivery.created_at), col(Delivery.id)),
        key=lambda d: (d.created_at, d.id),
        cursor=cursor,
        limit=limit,
        descending=True,
    )


# The order of an inbox cursor's key (services.common.pagination.cursor_key).
INBOX_CURSOR = (datetime, str)


async def delivery(
    session: AsyncSession,
    *,
    delivery_id: str,
    agency: str,
    person: str | None,
    for_update: bool = False,
) -> Delivery:
    """One of the agency's deliveries, or NotFound: for another agency's, and for a person who
    recused themselves from its referral."""
    query = readable_deliveries(agency=agency, person=person).where(Delivery.id == delivery_id)
    if for_update:
        query = query.with_for_update()
    found = (await session.exec(query)).first()
    if found is None:
        raise NotFound("No such delivery.")
    return found


async def overdue_everywhere(
    session: AsyncSession,
    *,
    limit: int = 100,
    now: datetime | None = None,
    person: str | None = None,
) -> list[Delivery]:
    """Open deliveries past their deadline at every agency, the longest overdue first (less
    the referrals `person` recused from). Routing facts only, as the inbox shows them."""
    query = readable_deliveries(agency=None, person=person).where(_late(now or utcnow()))
    query = query.order_by(col(Delivery.deadline), col(Delivery.id)).limit(limit)
    return list(await session.exec(query))


async def changes_since(
    session: AsyncSession, *, agency: str, after: int, limit: int = 200, person: str | None = None
) -> list[DeliveryChange]:
    """The agency's delivery changes after change `after`, oldest first (the live stream)."""
    query = select(DeliveryChange).where(
        DeliveryChange.agency == agency, col(DeliveryChange.id) > after
    )
    if person:  # nothing of a referral the person recused themselves from
        hidden = select(Delivery.id).where(col(Delivery.referral_id).in_(_recused(person)))
        query = query.where(col(DeliveryChange.delivery_id).not_in(hidden))
    rows = await session.exec(query.order_by(col(DeliveryChange.id)).limit(limit))
    return list(rows)


async def last_change(session: AsyncSession, *, agency: str) -> int:
    row = (
        await session.exec(
            select(DeliveryChange.id)
            .where(DeliveryChange.agency == agency)
            .order_by(col(DeliveryChange.id).desc())
            .limit(1)
        )
    ).first()
    return int(row or 0)


async def webhook(session: AsyncSession, *, agency: str) -> Webhook:
    hook = await session.get(Webhook, agency)
    if hook is None:
        raise NotFound("No webhook is set for this agency.")
    return hook


async def webhook_attempts(
    session: AsyncSession, *, agency: str, limit: int
) -> list[DispatchAttempt]:
    """The agency's webhook delivery attempts, newest first."""
    rows = await session.exec(
        select(DispatchAttempt)
        .where(DispatchAttempt.agency == agency, DispatchAttempt.channel == "webhook")
        .order_by(col(DispatchAttempt.id).desc())
        .limit(limit)
    )
    return list(rows)


async def email_recipients(session: AsyncSession, *, agency: str) -> EmailRecipients:
    row = await session.get(EmailRecipients, agency)
    if row is None:
        raise NotFound("No e-mail addresses are set for this agency.")
    return row
