"""Auditor endpoints. Role `auditor` only (anyone else: 404); every query is itself recorded
as an `access.granted` event, which joins the chain like any other.

The queries read in sessions of their own, not a `ReadSession`: each is closed before the
query's access record takes a connection (and the write lock) for its own transaction, so a
request holds one connection at a time and a burst of queries cannot exhaust the pool."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlmodel.ext.asyncio.session import AsyncSession

from services.audit import repository, service
from services.audit.schemas import Checkpoints, EventPage, SubjectAccessPage, Timeline
from services.audit.settings import AuditSettings
from services.common.auth import Principal, require
from services.common.deps import Keys, Runtime, WriteSession, from_state
from services.common.pagination import Key, Limit500, cursor_key
from services.common.params import UUID_PATTERN, Timestamp
from services.common.permissions import Action
from services.common.runtime import ServiceRuntime

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, Depends(require(Action.AUDIT_READ))]
DataProtectionOfficer = Annotated[Principal, Depends(require(Action.SUBJECT_ACCESS))]
Config = Annotated[AuditSettings, Depends(from_state("settings", AuditSettings))]


async def _record_query(
    runtime: ServiceRuntime,
    principal: Principal,
    action: str,
    resource: str | None,
    *,
    session: AsyncSession | None = None,
) -> None:
    await runtime.access_audit.emit(
        service.access_event(
            action=action,
            agency=principal.agency,
            client_id=principal.client_id,
            resource=resource,
            actor=principal.actor,
        ),
        subject=None,
        agency=principal.agency,
        session=session,
    )


@router.get("/events", summary="Audit records, filtered, in sequence order")
async def get_events(
    principal: Auditor,
    runtime: Runtime,
    settings: Config,
    vault: Keys,
    referral: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
    reference: Annotated[
        str | None,
        Query(
            pattern=r"^NRM-[0-9]{4}-[0-9]{6,}$",
            max_length=30,
            description="A referral's human reference: its submission event",
        ),
    ] = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    agency: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] = None,
    type: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z]+(\.[a-z_]+)+$", max_length=60)]],
        Query(max_length=40, description="Event types, e.g. `referral.submitted`"),
    ] = [],  # noqa: B006 (FastAPI copies it)
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    cursor: Annotated[Key | None, cursor_key(*repository.CURSOR)] = None,
    limit: Limit500 = 100,
) -> EventPage:
    """Following `next_cursor` lists the records there when the first page was read: each read
    is itself recorded, and those records come in the next walk."""
    limit = min(limit, settings.page_size_max)
    async with runtime.sessions() as session:
        page = await repository.events(
            session,
            referral=referral,
            reference=reference,
            actor=actor,
            agency=agency,
            types=type,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
        items = await service.describe(session, page.items, vault=vault)
    await _record_query(
        runtime, principal, "audit.events", referral or reference or agency or actor
    )
    return EventPage(items=items, next_cursor=page.next_cursor)


@router.get("/referrals/{referral_id}/timeline", summary="A referral's history, step by step")
async def get_timeline(
    referral_id: str, principal: Auditor, runtime: Runtime, vault: Keys
) -> Timeline:
    """Every step, erased ones too: who did what and when stays; an erased referral's details
    are `"payload": null, "erased": true`."""
    async with runtime.sessions() as session:
        steps = await service.timeline(session, referral_id=referral_id[:64], vault=vault)
    await _record_query(runtime, principal, "audit.timeline", referral_id[:64])
    return Timeline(referral_id=referral_id, events=steps)


ACCESS_DETAILS = ("action", "resource_type", "resource_id", "disclosure", "reason", "purpose")


def _access_item(r: Any, payload: dict[str, Any] | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "sequence": r.sequence,
        "type": r.type,
        "time": r.time,
        "outcome": r.outcome,
        "agency": r.agency,
        "client_id": r.client_id,
        "actor": r.client_id,  # the person's username, or the client for a system
        "erased": payload is None,
    }
    item.update({k: v for k, v in (payload or {}).items() if k in ACCESS_DETAILS})
    if payload and payload.get("agency"):
        item["agency"] = payload["agency"]  # the agency that read (the event's may be the host)
    return item


@router.get("/agencies/{agency}/access", summary="Who at an agency read what, allowed or denied")
async def get_agency_access(
    agency: str,
    principal: Auditor,
    runtime: Runtime,
    vault: Keys,
    actor: Annotated[
        str | None, Query(max_length=100, description="One person (username) or client only")
    ] = None,
    cursor: Annotated[Key | None, cursor_key(*repository.CURSOR)] = None,
    limit: Limit500 = 100,
) -> EventPage:
    async with runtime.sessions() as session:
        page = await repository.events(
            session,
            agency=agency[:63],
            actor=actor,
            types=repository.ACCESS_TYPES,
            cursor=cursor,
            limit=limit,
        )
        payloads = service.Payloads(session, vault)
        items = [_access_item(r, await payloads.of(r)) for r in page.items]
    await _record_query(runtime, principal, "audit.agency_access", agency[:63])
    return EventPage(items=items, next_cursor=page.next_cursor)


@router.get(
    "/referrals/{referral_id}/accesses",
    summary="Every read of one referral, allowed or denied: who, at which agency, when, what",
)
async def get_referral_accesses(
    referral_id: Annotated[str, Path(pattern=UUID_PATTERN)],
    principal: DataProtectionOfficer,
    runtime: Runtime,
    vault: Keys,
    cursor: Annotated[Key | None, cursor_key(*repository.CURSOR)] = None,
    limit: Limit500 = 500,
) -> SubjectAccessPage:
    """For the data protection officer's subject-access report (role `dpo`): the referral's
    `access.granted` and `access.denied` records, in sequence order. After erasure the
    details are gone (`"erased": true`); who, where and when stay."""
    async with runtime.sessions() as session:
        page = await repository.events(
            session, subject_access=referral_id, cursor=cursor, limit=limit
        )
        payloads = service.Payloads(session, vault)
        items = [_access_item(r, await payloads.of(r)) for r in page.items]
    await _record_query(runtime, principal, "audit.subject_access", referral_id)
    return SubjectAccessPage(referral_id=referral_id, items=items, next_cursor=page.next_cursor)


@router.get(
    "/verify",
    summary="Recompute the chain, check every checkpoint, and list each source's missing events",
)
async def get_verify(
    principal: Auditor,
    runtime: Runtime,
    settings: Config,
    vault: Keys,
    payloads: Annotated[
        bool,
        Query(description="Also open every sealed payload and check it against its commitment"),
    ] = False,
) -> dict[str, Any]:
    async with runtime.sessions() as session:
        vkey = await service.public_key(session, name=settings.key_name, vault=vault)
        result = await service.verify(
            session,
            vkey=vkey,
            grace=timedelta(seconds=settings.missing_grace_seconds),
            vault=vault if payloads else None,
        )
    await _record_query(runtime, principal, "audit.verify", None)
    return result


@router.get("/checkpoints", summary="The checkpoint public key and every signed checkpoint")
async def get_checkpoints(
    principal: Auditor, runtime: Runtime, settings: Config, vault: Keys, session: WriteSession
) -> Checkpoints:
    # A write: the checkpoint key is made on first use.
    vkey = await service.public_key(session, name=settings.key_name, vault=vault)
    items = [
        {"size": c.size, "head_hash": c.head_hash, "time": c.time, "note": c.note}
        for c in await repository.checkpoints(session)
    ]
    await _record_query(runtime, principal, "audit.checkpoints", None, session=session)
    return Checkpoints(origin=settings.origin, public_key=vkey, checkpoints=items)


@router.post("/checkpoints", summary="Sign the current head now")
async def post_checkpoint(
    principal: Auditor, runtime: Runtime, settings: Config, vault: Keys, session: WriteSession
) -> dict[str, Any]:
    row = await service.checkpoint(
        session, name=settings.key_name, origin=settings.origin, vault=vault, force=True
    )
    await _record_query(runtime, principal, "audit.checkpoint", None, session=session)
    if row is None:
        return {"size": 0, "note": None}
    return {"size": row.size, "head_hash": row.head_hash, "time": row.time, "note": row.note}


@router.get(
    "/export",
    summary="Every record and checkpoint as JSON Lines, verifiable offline (`nrm audit verify`)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}}},
)
async def get_export(
    principal: Auditor, runtime: Runtime, settings: Config, vault: Keys, session: WriteSession
) -> StreamingResponse:
    vkey = await service.public_key(session, name=settings.key_name, vault=vault)
    await _record_query(runtime, principal, "audit.export", None, session=session)

    async def lines() -> AsyncIterator[bytes]:
        # Its own session: the lines are read after the endpoint returned (and committed).
        async with runtime.sessions() as session:
            lines = service.export_lines(session, origin=settings.origin, vkey=vkey, vault=vault)
            async for line in lines:
                yield line

    return StreamingResponse(
        lines(),
        media_type="application/jsonl",
        headers={"Content-Disposition": 'attachment; filename="nrm-audit.jsonl"'},
    )
