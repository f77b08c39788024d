"""Router endpoints: the policy in force, a dry run of it, reloading it, and escalations."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, TypeAdapter
from sqlmodel import col, select

from contracts.referrals import ReferralIn, RoutingFacts, TipIn, VictimReferralIn
from contracts.vocabulary import AgencyId, Disclosure
from services.common.app import from_state
from services.common.auth import Principal, require
from services.common.body import body_schema, parse, read_json
from services.common.db import transaction
from services.common.errors import NotFound
from services.common.permissions import Action
from services.common.runtime import Runtime
from services.router import service
from services.router.consumer import RouterHandlers
from services.router.models import Escalation, RoutedReferral
from services.router.policy import Policy, PolicyError, basis_of
from services.router.settings import RouterSettings

router = APIRouter(prefix="/v1/routing", tags=["routing"])

PolicyReader = Annotated[Principal, Depends(require(Action.POLICY_READ))]
Explainer = Annotated[Principal, Depends(require(Action.POLICY_EXPLAIN))]
PolicyAdmin = Annotated[Principal, Depends(require(Action.POLICY_ADMIN))]
Submitter = Annotated[Principal, Depends(require(Action.REFERRAL_READ_OWN))]
Handlers = Annotated[RouterHandlers, Depends(from_state("handlers"))]
Config = Annotated[RouterSettings, Depends(from_state("settings"))]

_referral_in: TypeAdapter[VictimReferralIn | TipIn] = TypeAdapter(ReferralIn)


@router.get("/policy", summary="The routing policy in force and its version")
async def get_policy(_: PolicyReader, handlers: Handlers) -> dict[str, Any]:
    return handlers.current.describe()


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


@router.post(
    "/explain",
    summary="Who would receive this referral now, at which level, and why (nothing is stored)",
    openapi_extra=body_schema(_referral_in),
)
async def explain(
    request: Request,
    principal: Explainer,
    handlers: Handlers,
    settings: Config,
    submitted_by: Annotated[
        AgencyId | None,
        Query(description="Explain as if this agency submitted it (default: the caller's)"),
    ] = None,
) -> Explanation:
    body = parse(_referral_in, await read_json(request, limit=settings.max_body_bytes))
    policy = handlers.current
    submitter = submitted_by or principal.agency
    facts = RoutingFacts.from_referral(body, submitted_by=submitter)
    now = datetime.now(UTC)
    evaluation = policy.evaluate(facts, now=now, unavailable=handlers.unavailable())
    terms = policy.identification_terms(facts, submitted_at=now)
    clocks = None
    if terms is not None:
        overdue = policy.identification_overdue(facts, now=now, unavailable=handlers.unavailable())
        clocks = ExplainedClocks(
            authority=terms.authority,
            reasonable_grounds_due=terms.reasonable_grounds_due,
            reflection_period_seconds=terms.reflection_period.total_seconds(),
            reflection_ends_if_decided_now=now + terms.reflection_period,
            overdue_to=overdue.agency if overdue else None,
            overdue_disclosure=overdue.disclosure if overdue else None,
        )
    return Explanation(
        policy_version=policy.version,
        submitted_by=submitter,
        facts=facts,
        recipients=[
            ExplainedRecipient(
                agency=p.agency,
                disclosure=p.disclosure,
                rule=p.rule,
                deadline=p.deadline,
                requires_consent=list(p.requires_consent),
                basis=basis_of(p),
            )
            for p in evaluation.recipients
        ],
        excluded=[Excluded(agency=a, excluded=why) for a, why in evaluation.excluded.items()],
        rules=[ExplainedRule(**vars(step)) for step in evaluation.trace],
        identification=clocks,
    )


class Reloaded(BaseModel):
    version: str
    previous_version: str
    changed: bool


@router.post("/policy/reload", summary="Re-read the policy file; a bad file keeps the old policy")
async def reload_policy(
    principal: PolicyAdmin, handlers: Handlers, settings: Config, runtime: Runtime
) -> Reloaded:
    previous = handlers.current
    try:
        policy = Policy.load(
            settings.policy_path,
            deadlines=settings.deadlines,
            identification=settings.identification,
        )
    except PolicyError as exc:
        raise PolicyError(exc.problems, in_force=previous.version) from None
    handlers.current = policy
    async with transaction(runtime.sessions) as session:
        await service.policy_reloaded(
            session, policy=policy, previous=previous, actor=principal.actor
        )
    return Reloaded(
        version=policy.version,
        previous_version=previous.version,
        changed=policy.version != previous.version,
    )


class EscalationOut(BaseModel):
    agency: str = Field(description="The recipient that declined or missed its deadline")
    cause: str
    outcome: str = Field(description="`escalated to <agency> (<level>)`, or `not escalated: …`")
    at: datetime


@router.get(
    "/referrals/{referral_id}/escalations",
    summary="What became of each decline or missed deadline of a referral the caller's agency "
    "submitted, including why it could not be escalated",
)
async def get_escalations(
    referral_id: str, principal: Submitter, runtime: Runtime
) -> list[EscalationOut]:
    async with runtime.sessions() as session:
        referral = await session.get(RoutedReferral, referral_id)
        if (
            referral is None
            or referral.submitted_by != principal.agency
            or referral.erased_at is not None
        ):
            raise NotFound("No such referral.")
        rows = await session.exec(
            select(Escalation)
            .where(Escalation.referral_id == referral_id)
            .order_by(col(Escalation.created_at))
        )
        # Who was named implicated stays out of sight here as everywhere (the outcome text
        # names no agency when nobody was left).
        return [
            EscalationOut(agency=r.agency, cause=r.cause, outcome=r.outcome, at=r.created_at)
            for r in rows
        ]
