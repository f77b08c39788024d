"""Notify endpoints: the inbox, its live stream, staff actions, and agencies' channels."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.vocabulary import AgencyId, DeliveryStatus, Urgency
from services.common.auth import Principal, require, require_any, still_authorised
from services.common.body import json_media
from services.common.deps import Keys, ReadSession, Runtime, WriteSession, from_state
from services.common.errors import NotFound
from services.common.pagination import Key, Limit100, Limit500, cursor_key
from services.common.params import UUID_PATTERN
from services.common.permissions import Action, permitted
from services.notify import channels, repository, service
from services.notify.models import Webhook
from services.notify.schemas import (
    Attempt,
    Decline,
    EmailIn,
    EmailOut,
    InboxItem,
    InboxPage,
    OverduePage,
    WebhookIn,
    WebhookOut,
)
from services.notify.settings import NotifySettings

inbox_router = APIRouter(prefix="/v1", tags=["inbox"], dependencies=[Depends(json_media)])
agency_router = APIRouter(
    prefix="/v1/agencies", tags=["agency channels"], dependencies=[Depends(json_media)]
)

InboxReader = Annotated[Principal, Depends(require(Action.INBOX_READ))]
Actor = Annotated[Principal, Depends(require(Action.DELIVERY_ACT))]
Overseer = Annotated[Principal, Depends(require(Action.AGENCY_VIEW))]
ChannelAdmin = Annotated[
    Principal, Depends(require_any(Action.WEBHOOK_ADMIN, Action.WEBHOOK_MANAGE_OWN))
]
Config = Annotated[NotifySettings, Depends(from_state("settings", NotifySettings))]


@inbox_router.get("/inbox", summary="Deliveries to the caller's agency, newest first")
async def get_inbox(
    principal: InboxReader,
    session: ReadSession,
    status: Annotated[list[DeliveryStatus], Query()] = [],  # noqa: B006 (FastAPI copies it)
    urgency: Urgency | None = None,
    overdue: bool | None = None,
    referral: Annotated[
        str | None, Query(pattern=UUID_PATTERN, description="One referral's (its id)")
    ] = None,
    cursor: Annotated[Key | None, cursor_key(*repository.INBOX_CURSOR)] = None,
    limit: Limit100 = 50,
) -> InboxPage:
    page = await repository.inbox(
        session,
        agency=principal.agency,
        statuses=[s.value for s in status],
        urgency=urgency.value if urgency else None,
        overdue=overdue,
        referral_id=referral,
        cursor=cursor,
        limit=limit,
        person=principal.person_subject,
    )
    return InboxPage(
        items=[InboxItem.model_validate(service.item(d)) for d in page.items],
        next_cursor=page.next_cursor,
    )


@inbox_router.get(
    "/deliveries/overdue",
    summary="Open deliveries past their deadline at every agency (the coordinator's supervisors)",
)
async def get_overdue(
    principal: Overseer,
    settings: Config,
    session: ReadSession,
    limit: Limit500 = 100,
) -> OverduePage:
    service.may_oversee(
        agency=principal.agency,
        roles=frozenset(principal.roles),
        coordinator=settings.coordinator_agency,
    )
    rows = await repository.overdue_everywhere(
        session, limit=limit, person=principal.person_subject
    )
    return OverduePage(items=[InboxItem.model_validate(service.item(d)) for d in rows])


@inbox_router.get("/deliveries/{delivery_id}", summary="One of the agency's deliveries")
async def get_delivery(delivery_id: str, principal: InboxReader, session: ReadSession) -> InboxItem:
    d = await repository.delivery(
        session,
        delivery_id=delivery_id,
        agency=principal.agency,
        person=principal.person_subject,
    )
    return InboxItem.model_validate(service.item(d))


@inbox_router.get(
    "/inbox/stream",
    summary="Server-Sent Events: new and changed deliveries of the caller's agency",
    response_class=EventSourceResponse,
)
async def stream_inbox(
    request: Request,
    principal: InboxReader,
    runtime: Runtime,
    settings: Config,
    # The stream's ids are change numbers: anything else is a client's mistake, said as a 422
    # (more than 18 digits would overflow the database's integer).
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=r"^[0-9]{1,18}$")
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    # FastAPI frames the events (and pings after 15 s without one).
    agency, person = principal.agency, principal.person_subject
    waiter = asyncio.Event()
    # Subscribed, and the starting point read, before the first byte: a delivery made once the
    # client sees the stream open is never missed.
    service.CHANGED.subscribe(runtime.engine, waiter)
    try:
        if last_event_id is not None:
            after = int(last_event_id)  # resume: replay what the client missed
        else:
            async with runtime.sessions() as session:
                after = await repository.last_change(session, agency=agency)
        yield ServerSentEvent(retry=2000)
        idle = 0.0
        # Ends when the caller's token expires or its client, agency or person is disabled:
        # revocation bites on an open stream too, not only on the next request.
        while not await request.is_disconnected() and still_authorised(request, principal):
            waiter.clear()
            async with runtime.sessions() as session:
                changes = await repository.changes_since(
                    session, agency=agency, after=after, person=person
                )
            for change in changes:
                data = orjson.dumps({"change": change.kind, **change.item}).decode()
                yield ServerSentEvent(raw_data=data, event="delivery", id=str(change.id))
                after = change.id or after
            if changes:
                idle = 0.0
                continue
            # Woken by a commit in this process; polled for other instances' commits.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), settings.stream_poll_seconds)
            idle += settings.stream_poll_seconds
            if idle >= settings.stream_keepalive_seconds:
                idle = 0.0
                yield ServerSentEvent(comment="keep-alive")
    finally:
        service.CHANGED.unsubscribe(runtime.engine, waiter)


CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The delivery's status does not allow the action (an erased delivery "
        "allows only the acknowledgement of its erasure notice)"
    }
}


async def _act(
    session: AsyncSession,
    principal: Principal,
    delivery_id: str,
    action: str,
    reason: str | None = None,
) -> InboxItem:
    d = await service.act(
        session,
        delivery_id=delivery_id,
        agency=principal.agency,
        action=action,
        actor=principal.actor,
        reason=reason,
        person=principal.person_subject,
    )
    return InboxItem.model_validate(service.item(d))


@inbox_router.post(
    "/deliveries/{delivery_id}/acknowledge",
    responses=CONFLICT,
    summary="Acknowledge a delivery, or the notice that its referral was erased",
    description="On an erased delivery this records the acknowledgement of the erasure notice "
    "(`erasure_acknowledged_at`) once; acknowledging it again answers the same, records nothing.",
)
async def acknowledge(delivery_id: str, principal: Actor, session: WriteSession) -> InboxItem:
    return await _act(session, principal, delivery_id, "acknowledge")


@inbox_router.post(
    "/deliveries/{delivery_id}/accept",
    responses=CONFLICT,
    summary="Accept an acknowledged delivery",
)
async def accept(delivery_id: str, principal: Actor, session: WriteSession) -> InboxItem:
    return await _act(session, principal, delivery_id, "accept")


@inbox_router.post(
    "/deliveries/{delivery_id}/decline",
    responses=CONFLICT,
    summary="Decline an acknowledged delivery, with a reason",
)
async def decline(
    delivery_id: str, body: Decline, principal: Actor, session: WriteSession
) -> InboxItem:
    return await _act(session, principal, delivery_id, "decline", body.reason)


@inbox_router.post(
    "/deliveries/{delivery_id}/complete",
    responses=CONFLICT,
    summary="Complete an accepted delivery",
)
async def complete(delivery_id: str, principal: Actor, session: WriteSession) -> InboxItem:
    return await _act(session, principal, delivery_id, "complete")


# Agencies' channels


def _own_or_admin(principal: Principal, agency: str, settings: NotifySettings) -> None:
    """Admins manage every agency's channels; a supervisor only their own (others: 404). An
    agency the configuration does not know is 404 for everyone: nothing is ever routed to it."""
    if not permitted(principal.roles, Action.WEBHOOK_ADMIN) and agency != principal.agency:
        raise NotFound("Not found.")
    if agency not in settings.known_agencies:
        raise NotFound("No such agency.")


def _webhook_out(hook: Webhook, secret: str | None = None) -> WebhookOut:
    return WebhookOut(
        agency=hook.agency,
        url=hook.url,
        enabled=hook.enabled,
        consecutive_failures=hook.consecutive_failures,
        disabled_reason=hook.disabled_reason,
        secret=secret,
    )


@agency_router.put("/{agency}/webhook", summary="Set the agency's webhook endpoint")
async def put_webhook(
    agency: AgencyId,
    body: WebhookIn,
    principal: ChannelAdmin,
    settings: Config,
    vault: Keys,
    session: WriteSession,
) -> WebhookOut:
    _own_or_admin(principal, agency, settings)
    hook, generated = await channels.set_webhook(
        session,
        agency=agency,
        url=body.url,
        secret=body.secret,
        enabled=body.enabled,
        actor=principal.actor,
        vault=vault,
        settings=settings,
    )
    return _webhook_out(hook, generated)


@agency_router.get("/{agency}/webhook", summary="The agency's webhook endpoint and its health")
async def get_webhook(
    agency: AgencyId, principal: ChannelAdmin, settings: Config, session: ReadSession
) -> WebhookOut:
    _own_or_admin(principal, agency, settings)
    hook = await repository.webhook(session, agency=agency)
    return _webhook_out(hook)


@agency_router.get("/{agency}/webhook/attempts", summary="The webhook delivery-attempt log")
async def get_attempts(
    agency: AgencyId,
    principal: ChannelAdmin,
    settings: Config,
    session: ReadSession,
    limit: Limit500 = 100,
) -> list[Attempt]:
    _own_or_admin(principal, agency, settings)
    rows = await repository.webhook_attempts(session, agency=agency, limit=limit)
    return [Attempt.model_validate(r, from_attributes=True) for r in rows]


@agency_router.put(
    "/{agency}/email", summary="Set who at the agency is e-mailed, and in which language"
)
async def put_email(
    agency: AgencyId,
    body: EmailIn,
    principal: ChannelAdmin,
    settings: Config,
    session: WriteSession,
) -> EmailOut:
    _own_or_admin(principal, agency, settings)
    row = await channels.set_email(
        session,
        agency=agency,
        addresses=body.addresses,
        language=body.language,
        actor=principal.actor,
    )
    return EmailOut(agency=row.agency, addresses=row.addresses, language=row.language)


@agency_router.get("/{agency}/email", summary="Who at the agency is e-mailed, in which language")
async def get_email(
    agency: AgencyId, principal: ChannelAdmin, settings: Config, session: ReadSession
) -> EmailOut:
    _own_or_admin(principal, agency, settings)
    row = await repository.email_recipients(session, agency=agency)
    return EmailOut(agency=row.agency, addresses=row.addresses, language=row.language)
