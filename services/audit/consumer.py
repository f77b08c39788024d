"""Audit's Kafka side: every event on every `nrm.*.v1` topic joins the chain once; a
`referral.erased` first destroys the referral's key (ledger entry first, then the database)."""

import asyncio
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts import events as ev
from contracts.cloudevents import CloudEvent
from contracts.topics import CATALOGUE, DEADLETTER
from services.audit import service
from services.common.access import EMITTED
from services.common.bus import CURRENT_RECORD
from services.common.consumers import Consumer, Publisher
from services.common.crypto import Vault
from services.common.erasure import ErasureLedger
from services.common.revocation import access_consumer


@dataclass(frozen=True, slots=True)
class Chain:
    """What the handlers need: the vault (per-referral keys) and the erasure ledger."""

    vault: Vault
    ledger: ErasureLedger


access = access_consumer("audit")
events = Consumer[Chain](
    "audit",
    service="audit",
    topics=[t for t in CATALOGUE if t is not DEADLETTER],
    summary="Every event of every topic, into the hash chain once",
    background=True,
)
CONSUMERS = (access, events)
PUBLISHER = Publisher("audit", (ev.AccessGranted, *EMITTED))


@events.prepares()
async def keys(chain: Chain, session: AsyncSession, batch: list[CloudEvent]) -> None:
    await service.load_keys(session, events=batch, vault=chain.vault)


@events.handles(ev.ReferralErased)
async def erased(
    chain: Chain, session: AsyncSession, event: CloudEvent, payload: ev.ReferralErased
) -> None:
    # The ledger before the database: a crash in between leaves an entry that the next start
    # carries out; the reverse could lose the erasure with a restored backup.
    await asyncio.to_thread(
        chain.ledger.record,
        referral_id=payload.referral_id,
        basis=payload.basis,
        erased_at=event.time,
    )
    await service.erase(
        session, referral_id=payload.referral_id, basis=payload.basis, erased_at=event.time
    )
    await append(chain, session, event, payload)


@events.handles_every()
async def append(
    chain: Chain, session: AsyncSession, event: CloudEvent, payload: ev.Payload
) -> None:
    record = CURRENT_RECORD.get()
    assert record is not None, "audit handlers run inside ConsumerRunner"
    await service.append(
        session,
        event=event,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        vault=chain.vault,
    )
