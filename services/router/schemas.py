"""Router's request and response bodies."""

from datetime import datetime

from pydantic import BaseModel, Field

from contracts.referrals import RoutingFacts
from contracts.vocabulary import Disclosure


class ExplainedRecipient(BaseModel):
    agency: str
    disclosure: Disclosure
    rule: str
    deadline: datetime | None
    requires_consent: list[str]
    basis: str = Field(
        description="What the level rests on: `consent: <scopes>`, a legal basis "
        "(`child_protection`, `no_victim`), or `none needed (anonymous)`"
    )


class Excluded(BaseModel):
    agency: str
    excluded: str = Field(description="`implicated` or `disabled`")


class ExplainedRule(BaseModel):
    rule: str
    matched: bool
    unmet: list[str]
    selected: list[str]
    notes: list[str]


class ExplainedClocks(BaseModel):
    """The identification clocks this referral would get if submitted now."""

    authority: str = Field(description="The competent authority that decides")
    reasonable_grounds_due: datetime = Field(description="A reasonable-grounds decision by")
    reflection_period_seconds: float = Field(
        description="The recovery and reflection period from a reasonable-grounds decision"
    )
    reflection_ends_if_decided_now: datetime
    overdue_to: str | None = Field(description="Who an overdue decision is escalated to")
    overdue_disclosure: Disclosure | None


class Explanation(BaseModel):
    policy_version: str
    submitted_by: str
    facts: RoutingFacts
    recipients: list[ExplainedRecipient]
    excluded: list[Excluded]
    rules: list[ExplainedRule]
    identification: ExplainedClocks | None = Field(
        default=None, description="Victim referrals, where the policy has `identification`"
    )


class Reloaded(BaseModel):
    version: str
    previous_version: str
    changed: bool


class EscalationOut(BaseModel):
    agency: str = Field(description="The recipient that declined or missed its deadline")
    cause: str
    outcome: str = Field(description="`escalated to <agency> (<level>)`, or `not escalated: …`")
    at: datetime
