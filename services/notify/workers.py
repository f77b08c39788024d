"""Notify's background loops: the dispatcher (webhooks, e-mail) and the deadline clock.

Both are safe with several notify instances on one database: a dispatch is leased by moving its
`next_attempt_at` forward with a conditional UPDATE before it is sent, and a missed deadline is
claimed by a conditional UPDATE before its event is staged (`service.miss_deadlines`).
"""

import asyncio
import logging
from datetime import timedelta

import httpx
from sqlalchemy import and_, update
from sqlmodel import col, select

from contracts.events import DeliveryFailed, DeliveryNotified
from services.common.bus import describe_error
from services.common.crypto import Vault
from services.common.db import SessionFactory, transaction
from services.common.loops import Loop
from services.common.models import utcnow
from services.common.outbox import add_event
from services.common.tracing import continued
from services.notify import channels, service
from services.notify.models import Delivery, Dispatch, DispatchAttempt, EmailRecipients, Webhook
from services.notify.settings import NotifySettings

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # a send that has not finished by then may be tried elsewhere


class DeadlineClock(Loop):
    def __init__(self, *, sessions: SessionFactory, settings: NotifySettings) -> None:
        super().__init__("notify:deadlines", settings.deadline_sweep_seconds)
        self._sessions = sessions

    async def tick(self) -> int:
        async with transaction(self._sessions) as session:
            return await service.miss_deadlines(session, now=utcnow())


class Dispatcher(Loop):
    """Sends queued webhook and e-mail dispatches, retrying with backoff until the horizon."""

    def __init__(self, *, sessions: SessionFactory, settings: NotifySettings, vault: Vault) -> None:
        super().__init__("notify:dispatch", settings.dispatch_poll_seconds)
        self._sessions = sessions
        self._settings = settings
        self._vault = vault
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        # No redirects: a 3xx could point the request at an address the URL check refused. No
        # proxy from the environment: it would connect in our stead, to an unchecked address.
        # No kept-alive connections: one opened (and its certificate checked) for one agency's
        # host must not carry another's request that resolved to the same address.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()

    async def tick(self) -> int:
        leased = await self._lease(limit=50)
        outcomes = await asyncio.gather(*(self._deliver(d) for d in leased), return_exceptions=True)
        for dispatch, outcome in zip(leased, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Its lease runs out and it is tried again; the others are not held back.
                log.warning(
                    "dispatch failed",
                    extra={"dispatch": dispatch.id, "error": describe_error(outcome)},
                )
        return len(leased)

    async def _lease(self, *, limit: int) -> list[Dispatch]:
        now = utcnow()
        async with transaction(self._sessions) as session:
            due = list(
                await session.exec(
                    select(Dispatch)
                    .where(Dispatch.status == "pending", col(Dispatch.next_attempt_at) <= now)
                    .order_by(col(Dispatch.next_attempt_at))
                    .limit(limit)
                )
            )
            leased = []
            for d in due:
                claim = (
                    update(Dispatch)
                    .where(
                        and_(
                            col(Dispatch.id) == d.id,
                            col(Dispatch.next_attempt_at) == d.next_attempt_at,
                        )
                    )
                    .values(next_attempt_at=now + LEASE)
                )
                if (await session.exec(claim)).rowcount == 1:
                    leased.append(d)
            return leased

    async def _deliver(self, dispatch: Dispatch) -> None:
        with continued(dispatch.traceparent, "nrm.notify", f"dispatch {dispatch.channel}"):
            await self._send(dispatch)

    async def _send(self, dispatch: Dispatch) -> None:
        settings = self._settings
        async with self._sessions() as session:
            hook = await session.get(Webhook, dispatch.agency)
            email = await session.get(EmailRecipients, dispatch.agency)
            current = await session.get(Dispatch, dispatch.id)
        if current is None or current.status != "pending":
            return  # cancelled since it was leased (its referral was erased): nothing is sent
        if dispatch.channel == "webhook":
            if hook is None or not hook.enabled:
                await self._finish(
                    dispatch, channels.Outcome(False, error="webhook disabled"), give_up=True
                )
                return
            assert self._client is not None
            outcome = await channels.send_webhook(
                dispatch,
                url=hook.url,
                secret=channels.webhook_secret(hook, self._vault),
                client=self._client,
                settings=settings,
            )
        else:
            if settings.smtp_host is None or email is None or not email.addresses:
                await self._finish(
                    dispatch, channels.Outcome(False, error="e-mail not configured"), give_up=True
                )
                return
            outcome = await channels.send_email(
                dispatch, addresses=email.addresses, settings=settings
            )
        await self._finish(dispatch, outcome)

    async def _finish(
        self, dispatch: Dispatch, outcome: channels.Outcome, *, give_up: bool = False
    ) -> None:
        settings = self._settings
        now = utcnow()
        async with transaction(self._sessions) as session:
            row = await session.get(Dispatch, dispatch.id)
            assert row is not None
            row.attempts += 1
            row.last_error = outcome.error
            session.add(
                DispatchAttempt(
                    dispatch_id=row.id,
                    agency=row.agency,
                    channel=row.channel,
                    attempted_at=now,
                    ok=outcome.ok,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            # Locked: concurrent sends to one endpoint must count failures one at a time.
            hook = (
                await session.get(Webhook, row.agency, with_for_update=True)
                if row.channel == "webhook"
                else None
            )
            delivery = await session.get(Delivery, row.delivery_id)
            if row.status != "pending":
                # Cancelled while it was being sent (its referral was erased): it stays so.
                session.add(row)
                return
            if outcome.ok:
                row.status, row.done_at = "delivered", now
                if hook is not None:
                    hook.consecutive_failures = 0
                    session.add(hook)
                if delivery is not None and row.kind in service.EMAILED | {"delivery.created"}:
                    notified = DeliveryNotified(
                        delivery_id=delivery.id,
                        referral_id=delivery.referral_id,
                        agency=delivery.agency,
                        channel=row.channel,
                    )
                    await add_event(session, service.delivery_event(notified, delivery))
            else:
                if hook is not None and outcome.error != "webhook disabled":
                    hook.consecutive_failures += 1
                    session.add(hook)
                    if hook.enabled and hook.consecutive_failures >= settings.webhook_disable_after:
                        await channels.disable_webhook(
                            session,
                            hook=hook,
                            reason=f"{hook.consecutive_failures} consecutive failures",
                        )
                horizon = row.created_at + timedelta(seconds=settings.webhook_horizon_seconds)
                retry_at = now + timedelta(
                    seconds=channels.backoff(
                        row.attempts,
                        base=settings.webhook_backoff_seconds,
                        cap=settings.webhook_backoff_cap_seconds,
                    )
                )
                if give_up or (hook is not None and not hook.enabled) or retry_at > horizon:
                    row.status, row.done_at = "failed", now
                    if delivery is not None:
                        failed = DeliveryFailed(
                            delivery_id=delivery.id,
                            referral_id=delivery.referral_id,
                            agency=delivery.agency,
                            channel=row.channel,
                            error=(outcome.error or "failed")[:500],
                        )
                        await add_event(session, service.delivery_event(failed, delivery))
                else:
                    row.next_attempt_at = retry_at
            session.add(row)
