"""Router endpoints: the policy in force, a dry run of it, reloading it, and escalations."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import TypeAdapter

from contracts.referrals import ReferralIn, RoutingFacts, TipIn, VictimReferralIn
from contracts.vocabulary import AgencyId
from services.common.auth import Principal, require
from services.common.body import body_schema, parse, read_json
from services.common.deps import ReadSession, WriteSession, from_state
from services.common.permissions import Action
from services.router import repository, service
from services.router.consumer import RouterHandlers
from services.router.policy import Policy, PolicyError, basis_of
from services.router.schemas import (
    EscalationOut,
    Excluded,
    ExplainedClocks,
    ExplainedRecipient,
    ExplainedRule,
    Explanation,
    Reloaded,
)
from services.router.settings import RouterSettings

router = APIRouter(prefix="/v1/routing", tags=["routing"])

PolicyReader = Annotated[Principal, Depends(require(Action.POLICY_READ))]
Explainer = Annotated[Principal, Depends(require(Action.POLICY_EXPLAIN))]
PolicyAdmin = Annotated[Principal, Depends(require(Action.POLICY_ADMIN))]
Submitter = Annotated[Principal, Depends(require(Action.REFERRAL_READ_OWN))]
Handlers = Annotated[RouterHandlers, Depends(from_state("handlers", RouterHandlers))]
Config = Annotated[RouterSettings, Depends(from_state("settings", RouterSettings))]

_referral_in: TypeAdapter[VictimReferralIn | TipIn] = TypeAdapter(ReferralIn)


@router.get("/policy", summary="The routing policy in force and its version")
async def get_policy(_: PolicyReader, handlers: Handlers) -> dict[str, Any]:
    return handlers.current.describe()


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


@router.post("/policy/reload", summary="Re-read the policy file; a bad file keeps the old policy")
async def reload_policy(
    principal: PolicyAdmin, handlers: Handlers, settings: Config, session: WriteSession
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
    await service.policy_reloaded(session, policy=policy, previous=previous, actor=principal.actor)
    return Reloaded(
        version=policy.version,
        previous_version=previous.version,
        changed=policy.version != previous.version,
    )


@router.get(
    "/referrals/{referral_id}/escalations",
    summary="What became of each decline or missed deadline of a referral the caller's agency "
    "submitted, including why it could not be escalated",
)
async def get_escalations(
    referral_id: str, principal: Submitter, session: ReadSession
) -> list[EscalationOut]:
    rows = await repository.escalations(session, referral_id=referral_id, agency=principal.agency)
    # Who was named implicated stays out of sight here as everywhere (the outcome text
    # names no agency when nobody was left).
    return [
        EscalationOut(agency=r.agency, cause=r.cause, outcome=r.outcome, at=r.created_at)
        for r in rows
    ]
