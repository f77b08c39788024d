"""The access-audit emitter: every grant, denial, failed authentication and admin change becomes
an event on `nrm.access.v1`, written through the emitting service's outbox."""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import AccessDenied, AdminChanged, AuthFailed, Payload
from services.common.db import SessionFactory, transaction
from services.common.errors import NotFound, error_response
from services.common.models import utcnow
from services.common.outbox import add_event

# What every service's runtime publishes on its own (refusals, failed authentications), for the
# services' publisher declarations.
EMITTED = (AccessDenied, AuthFailed)

FailureKey = tuple[str | None, str | None, str | None, str | None]  # client, address, path, actor


async def admin_changed(
    session: AsyncSession,
    *,
    source: str,
    action: str,
    target_type: str,
    target_id: str,
    actor: str | None,
    details: dict[str, Any] | None = None,
    subject: str | None = None,
    agency: str | None = None,
    event_actor: str | None = None,
) -> None:
    """Announce an administrative change (`admin.changed` on the access topic) in the caller's
    transaction: the audit log has it exactly when the change commits."""
    payload = AdminChanged(
        action=action,
        target_type=target_type,
        target_id=target_id,
        actor=actor,
        details=details or {},
    )
    event = CloudEvent.new(
        source=source, payload=payload, subject=subject, agency=agency, actor=event_actor
    )
    await add_event(session, event)


@dataclass
class _Pending:
    """Failures of one key after the first of its window, not yet recorded."""

    opened: float  # monotonic time the window opened
    count: int = 0
    reason: str = ""
    first_at: datetime | None = None
    last_at: datetime | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True, slots=True)
class AccessAudit:
    service: str
    sessions: SessionFactory
    # A flood of failed authentications must not become a flood of audit records: per (client,
    # address, path), the first failure of a window is recorded at once and the rest as one
    # record with their count when the window closes.
    failure_window: float = 10.0
    max_pending: int = 10_000
    _pending: dict[FailureKey, _Pending] = field(default_factory=dict)
    _flushing: set[asyncio.Task[None]] = field(default_factory=set)

    async def emit(
        self,
        payload: Payload,
        *,
        subject: str | None = None,
        agency: str | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        """Record in a transaction of its own (a denial is audited even though the request
        fails), or in `session`'s: an action and its record commit together."""
        actor = getattr(payload, "actor", None) or getattr(payload, "client_id", None)
        event = CloudEvent.new(
            source=self.service, payload=payload, subject=subject, agency=agency, actor=actor
        )
        if session is not None:
            await add_event(session, event)
            return
        async with transaction(self.sessions) as own:
            await add_event(own, event)

    async def auth_failed(
        self,
        *,
        reason: str,
        path: str | None,
        source: str | None,
        client_id: str | None = None,
        actor: str | None = None,
    ) -> None:
        """Record a failed authentication, coalesced with the same caller's recent failures."""
        key: FailureKey = (client_id, source, path, actor)
        if key not in self._pending and len(self._pending) >= self.max_pending:
            key = (None, None, path, None)  # under a spread-out flood, one record per path
        now = time.monotonic()
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = _Pending(opened=now)
            await self.emit(
                AuthFailed(reason=reason, client_id=key[0], path=path, source=key[1], actor=key[3])
            )
            return
        at = utcnow()
        pending.count += 1
        pending.reason = reason
        pending.first_at = pending.first_at or at
        pending.last_at = at
        if pending.timer is None:
            delay = max(0.0, pending.opened + self.failure_window - now)
            pending.timer = asyncio.get_running_loop().call_later(delay, self._close, key)

    def _close(self, key: FailureKey) -> None:
        task = asyncio.get_running_loop().create_task(self._record(key))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _record(self, key: FailureKey) -> None:
        pending = self._pending.pop(key, None)
        if pending is None or not pending.count:
            return
        await self.emit(
            AuthFailed(
                reason=pending.reason,
                client_id=key[0],
                path=key[2],
                source=key[1],
                actor=key[3],
                attempts=pending.count,
                first_at=pending.first_at,
                last_at=pending.last_at,
            )
        )

    async def flush(self) -> None:
        """Record every coalesced count now (on shutdown, before the outbox's last flush)."""
        for key, pending in list(self._pending.items()):
            if pending.timer is not None:
                pending.timer.cancel()
            await self._record(key)
        self._pending.clear()
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)


async def audit_refusal(request: Request, exc: NotFound) -> None:
    """`access.denied` for an object-level refusal: an authenticated caller asked for something
    that is not theirs to know about (or does not exist; the two look the same to them)."""
    principal: Any = getattr(request.state, "principal", None)
    audit: AccessAudit | None = getattr(request.app.state, "access_audit", None)
    if principal is None or audit is None or exc.audited:
        return
    route = getattr(request.scope.get("route"), "path", request.url.path)
    name, value = next(iter(request.path_params.items()), (None, None))
    resource_type = name.removesuffix("_id") if name else "endpoint"
    resource_id = str(value)[:64] if value is not None else f"{request.method} {route}"
    await audit.emit(
        AccessDenied(
            action=f"{request.method} {route}",
            resource_type=resource_type,
            resource_id=resource_id,
            agency=principal.agency,
            client_id=principal.client_id,
            actor=principal.actor,
            purpose=request.headers.get("x-purpose", "")[:500] or None,
            reason=exc.detail[:500],
        ),
        # A referral's refusals belong on its timeline.
        subject=resource_id if resource_type == "referral" else None,
        agency=principal.agency,
    )
    exc.audited = True


def install_refusal_audit(app: FastAPI) -> None:
    """404s raised by endpoints for an authenticated caller become `access.denied` events."""

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        await audit_refusal(request, exc)
        return error_response(request, exc)
