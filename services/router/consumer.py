"""The router's Kafka side: referrals in, the case events that call for escalation, and the
routing decisions it publishes."""

from collections.abc import Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts import events as ev
from contracts.cloudevents import CloudEvent
from contracts.topics import CASE_EVENTS, REFERRALS
from services.common.access import EMITTED
from services.common.consumers import Consumer, Publisher
from services.common.erasure import ErasureLedger
from services.common.revocation import access_consumer
from services.router import service
from services.router.policy import Policy

access = access_consumer("router")
referrals = Consumer["RouterHandlers"](
    "router.referrals",
    service="router",
    topics=[REFERRALS],
    summary="Referrals to route, and the changes that call for a new decision",
)
case_events = Consumer["RouterHandlers"](
    "router.case-events",
    service="router",
    topics=[CASE_EVENTS],
    summary="Declined and overdue deliveries, to escalate",
    background=True,
)
CONSUMERS = (access, referrals, case_events)
PUBLISHER = Publisher("router", (ev.ReferralRouted, ev.AdminChanged, *EMITTED))


class RouterHandlers:
    """Handlers bound to the live policy (`current`), which a reload replaces, and to the
    agencies disabled now (`unavailable()`), which routing leaves out."""

    def __init__(
        self,
        policy: Policy,
        unavailable: Callable[[], frozenset[str]] = frozenset,
        ledger: ErasureLedger | None = None,
    ) -> None:
        self.current = policy
        self.unavailable = unavailable
        self.ledger = ledger

    @referrals.handles(ev.ReferralSubmitted)
    async def submitted(
        self, session: AsyncSession, event: CloudEvent, payload: ev.ReferralSubmitted
    ) -> None:
        await service.route_submitted(
            session,
            policy=self.current,
            submitted=payload,
            cause=event,
            unavailable=self.unavailable(),
        )

    @referrals.handles(ev.ReferralConsentChanged)
    async def consent_changed(
        self, session: AsyncSession, event: CloudEvent, payload: ev.ReferralConsentChanged
    ) -> None:
        await service.route_consent_changed(
            session,
            policy=self.current,
            changed=payload,
            cause=event,
            unavailable=self.unavailable(),
        )

    @referrals.handles(ev.ReferralRiskChanged)
    async def risk_changed(
        self, session: AsyncSession, event: CloudEvent, payload: ev.ReferralRiskChanged
    ) -> None:
        await service.route_risk_changed(
            session,
            policy=self.current,
            changed=payload,
            cause=event,
            unavailable=self.unavailable(),
        )

    @referrals.handles(ev.ReferralImplicatedChanged)
    async def implicated_changed(
        self, session: AsyncSession, event: CloudEvent, payload: ev.ReferralImplicatedChanged
    ) -> None:
        await service.route_facts_changed(
            session,
            policy=self.current,
            referral_id=payload.referral_id,
            reference=payload.reference,
            facts=payload.facts,
            reason=ev.RoutingReason.IMPLICATED,
            cause=event,
            unavailable=self.unavailable(),
        )

    @referrals.handles(ev.ReferralWithdrawn)
    async def withdrawn(
        self, session: AsyncSession, event: CloudEvent, payload: ev.ReferralWithdrawn
    ) -> None:
        await service.route_withdrawn(session, policy=self.current, withdrawn=payload, cause=event)

    @referrals.handles(ev.IdentificationDecided)
    async def identification_decided(
        self, session: AsyncSession, event: CloudEvent, payload: ev.IdentificationDecided
    ) -> None:
        await service.identification_decided(
            session,
            policy=self.current,
            decided=payload,
            cause=event,
            unavailable=self.unavailable(),
        )

    @referrals.handles(ev.IdentificationOverdue)
    async def identification_overdue(
        self, session: AsyncSession, event: CloudEvent, payload: ev.IdentificationOverdue
    ) -> None:
        await service.identification_overdue(
            session,
            policy=self.current,
            overdue=payload,
            cause=event,
            unavailable=self.unavailable(),
        )

    @referrals.handles(ev.ReferralErased)
    async def erased(
        self, session: AsyncSession, event: CloudEvent, payload: ev.ReferralErased
    ) -> None:
        if self.ledger is not None:  # before the transaction commits
            self.ledger.record(
                referral_id=payload.referral_id, basis=payload.basis, erased_at=event.time
            )
        await service.apply_erased(session, referral_id=payload.referral_id)

    @case_events.handles(ev.ReferralDeclined, ev.ReferralDeadlineMissed)
    async def escalate(
        self, session: AsyncSession, event: CloudEvent, payload: ev.DeliveryRef
    ) -> None:
        await service.escalate(
            session,
            policy=self.current,
            delivery=payload,
            cause_type=event.type,
            cause=event,
            unavailable=self.unavailable(),
        )
