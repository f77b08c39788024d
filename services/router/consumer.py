"""The router's Kafka handlers: referrals in, and the case events that call for escalation."""

from collections.abc import Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import (
    IdentificationDecided,
    IdentificationOverdue,
    ReferralConsentChanged,
    ReferralDeadlineMissed,
    ReferralDeclined,
    ReferralErased,
    ReferralImplicatedChanged,
    ReferralRiskChanged,
    ReferralSubmitted,
    ReferralWithdrawn,
    RoutingReason,
)
from services.common.erasure import ErasureLedger
from services.router import service
from services.router.policy import Policy


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

    async def on_referral(self, session: AsyncSession, event: CloudEvent) -> None:
        payload = event.payload()
        policy = self.current
        if isinstance(payload, ReferralSubmitted):
            await service.route_submitted(
                session,
                policy=policy,
                submitted=payload,
                cause=event,
                unavailable=self.unavailable(),
            )
        elif isinstance(payload, ReferralConsentChanged):
            await service.route_consent_changed(
                session,
                policy=policy,
                changed=payload,
                cause=event,
                unavailable=self.unavailable(),
            )
        elif isinstance(payload, ReferralRiskChanged):
            await service.route_risk_changed(
                session, policy=policy, changed=payload, cause=event, unavailable=self.unavailable()
            )
        elif isinstance(payload, ReferralImplicatedChanged):
            await service.route_facts_changed(
                session,
                policy=policy,
                referral_id=payload.referral_id,
                reference=payload.reference,
                facts=payload.facts,
                reason=RoutingReason.IMPLICATED,
                cause=event,
                unavailable=self.unavailable(),
            )
        elif isinstance(payload, ReferralWithdrawn):
            await service.route_withdrawn(session, policy=policy, withdrawn=payload, cause=event)
        elif isinstance(payload, IdentificationDecided):
            await service.identification_decided(
                session, policy=policy, decided=payload, cause=event, unavailable=self.unavailable()
            )
        elif isinstance(payload, ReferralErased):
            if self.ledger is not None:  # before the transaction commits
                self.ledger.record(
                    referral_id=payload.referral_id, basis=payload.basis, erased_at=event.time
                )
            await service.apply_erased(session, referral_id=payload.referral_id)
        elif isinstance(payload, IdentificationOverdue):
            await service.identification_overdue(
                session, policy=policy, overdue=payload, cause=event, unavailable=self.unavailable()
            )

    async def on_case_event(self, session: AsyncSession, event: CloudEvent) -> None:
        payload = event.payload()
        if isinstance(payload, ReferralDeclined | ReferralDeadlineMissed):
            await service.escalate(
                session,
                policy=self.current,
                delivery=payload,
                cause_type=event.type,
                cause=event,
                unavailable=self.unavailable(),
            )
