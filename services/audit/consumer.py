"""Audit's Kafka handler: every event on every `nrm.*.v1` topic joins the chain once; a
`referral.erased` first destroys the referral's key (ledger entry first, then the database)."""

import asyncio
from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import ReferralErased
from services.audit import service
from services.common.bus import CURRENT_RECORD
from services.common.crypto import Vault
from services.common.erasure import ErasureLedger


def handler(
    *, vault: Vault, ledger: ErasureLedger
) -> Callable[[AsyncSession, CloudEvent], Awaitable[None]]:
    async def on_event(session: AsyncSession, event: CloudEvent) -> None:
        payload = event.payload()  # validates: one that does not fit is dead-lettered instead
        record = CURRENT_RECORD.get()
        assert record is not None, "audit handlers run inside ConsumerRunner"
        if isinstance(payload, ReferralErased):
            # The ledger before the database: a crash in between leaves an entry that the next
            # start carries out; the reverse could lose the erasure with a restored backup.
            await asyncio.to_thread(
                ledger.record,
                referral_id=payload.referral_id,
                basis=payload.basis,
                erased_at=event.time,
            )
            await service.erase(
                session, referral_id=payload.referral_id, basis=payload.basis, erased_at=event.time
            )
        await service.append(
            session,
            event=event,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            vault=vault,
        )

    return on_event
