"""Audit's queries. Who may read which records is decided in one place, `readable_records`:
an auditor every record; a data protection officer, for a subject-access report, only the
reads of the one referral the report is about."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from services.audit.models import ChainCheckpoint, Record
from services.audit.service import stamp
from services.common.pagination import Key, KeyPart, Page, paginate

ACCESS_TYPES = ("access.granted", "access.denied")
# A cursor's key (services.common.pagination.cursor_key): the last record's sequence, then the
# walk's bound. Every read of these lists is itself audited, so a walk that followed the chain's
# end would never finish (a page of one record appends one); a walk lists the records that
# existed when its first page was read, and the next walk takes up what came since.
CURSOR = (int, int)


def readable_records(*, subject_access: str | None = None) -> SelectOfScalar[Record]:
    """The records a caller may read: every one (an auditor), or with `subject_access` (a
    referral id, for the `dpo`) the allowed and refused reads of that referral only."""
    query = select(Record)
    if subject_access is not None:
        query = query.where(Record.subject == subject_access, col(Record.type).in_(ACCESS_TYPES))
    return query


async def events(
    session: AsyncSession,
    *,
    subject_access: str | None = None,
    referral: str | None = None,
    reference: str | None = None,
    actor: str | None = None,
    agency: str | None = None,
    types: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Key | None = None,
    limit: int = 100,
) -> Page[Record]:
    """One page of the readable records matching every filter given, in sequence order, up to
    the chain's length when the walk began (`CURSOR`)."""
    bound: KeyPart
    if cursor is None:
        bound = (await session.exec(select(func.coalesce(func.max(col(Record.sequence)), 0)))).one()
    else:
        bound = cursor[1]  # an int: `cursor_key(*CURSOR)` checked it
    query = readable_records(subject_access=subject_access).where(col(Record.sequence) <= bound)
    if referral:
        query = query.where(Record.subject == referral)
    if reference:
        # Only the submission names the reference; the API's pattern keeps LIKE's wildcards out.
        query = query.where(Record.type == "referral.submitted", Record.reference == reference)
    if actor:
        query = query.where(Record.client_id == actor)
    if agency:
        query = query.where(Record.agency == agency)
    if types:
        query = query.where(col(Record.type).in_(types))
    if since:
        query = query.where(col(Record.time) >= stamp(since))
    if until:
        query = query.where(col(Record.time) < stamp(until))
    return await paginate(
        session,
        query,
        order=(col(Record.sequence),),
        key=lambda r: (r.sequence, bound),
        cursor=cursor,
        limit=limit,
    )


async def checkpoints(session: AsyncSession) -> list[ChainCheckpoint]:
    """Every signed checkpoint, oldest first."""
    return list(await session.exec(select(ChainCheckpoint).order_by(col(ChainCheckpoint.id))))
