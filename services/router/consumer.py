"""The router's Kafka handlers: referrals in, and the case events that call for escalation."""

from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.cloudevents import CloudEvent
from contracts.events import (
    ReferralConsentChanged,
    ReferralDeadlineMissed,
    ReferralDeclined,
    ReferralSubmitted,
    ReferralWithdrawn,
)
from services.router import service
from services.router.policy import Policy


class RouterHandlers:
    """Handlers bound to the live policy (`current`), which a reload replaces."""

    def __init__(self, policy: Policy) -> None:
        self.current = policy

    async def on_referral(self, session: AsyncSession, event: CloudEvent) -> None:
        payload = event.payload()
        policy = self.current
        if isinstance(payload, ReferralSubmitted):
            await service.route_submitted(session, policy=policy, submitted=payload, cause=event)
        elif isinstance(payload, ReferralConsentChanged):
            await service.route_consent_changed(
                session, policy=policy, changed=payload, cause=event
            )
        elif isinstance(payload, ReferralWithdrawn):
            await service.route_withdrawn(session, policy=policy, withdrawn=payload, cause=event)

    async def on_case_event(self, session: AsyncSession, event: CloudEvent) -> None:
        payload = event.payload()
        if isinstance(payload, ReferralDeclined | ReferralDeadlineMissed):
            await service.escalate(
                session, policy=self.current, delivery=payload, cause_type=event.type, cause=event
            )
