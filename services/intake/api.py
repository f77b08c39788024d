"""Intake endpoints (thin: parse, authorise, call the service, audit the read)."""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import TypeAdapter

from contracts.events import AccessDenied, AccessGranted
from contracts.referrals import Consent, ReferralIn, Safety, TipIn, VictimReferralIn
from contracts.vocabulary import (
    Disclosure,
    ErasureBasis,
    Role,
    Urgency,
)
from services.common.auth import Principal, require, require_any
from services.common.body import body_schema, parse, read_json
from services.common.db import transaction
from services.common.deps import (
    Keys,
    ReadSession,
    Runtime,
    WriteSession,
    from_state,
    json_body,
)
from services.common.erasure import ErasureLedger
from services.common.errors import NotFound
from services.common.pagination import Key, Limit100, cursor_key
from services.common.params import UUID_PATTERN, Timestamp
from services.common.permissions import Action
from services.common.retention import load_retention
from services.common.tracing import current_traceparent
from services.intake import repository, retention, service
from services.intake.batch import SubmissionQueue
from services.intake.schemas import (
    ConsentOut,
    DueItem,
    DueList,
    ErasureIn,
    ErasureOut,
    HoldOut,
    Holds,
    IdentificationIn,
    IdentificationStatus,
    ImplicatedIn,
    ImplicatedOut,
    InvestigationIn,
    InvestigationStatus,
    PendingErasure,
    PendingErasures,
    RecipientStatus,
    RecusalIn,
    ReferralPage,
    ReferralStatus,
    ReferralSummary,
    RunningClock,
    RunningClocks,
    SafetyOut,
    Submitted,
)
from services.intake.settings import IntakeSettings

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])
clocks = APIRouter(prefix="/v1/identification", tags=["identification"])

Submitter = Annotated[Principal, Depends(require(Action.REFERRAL_SUBMIT))]
Reader = Annotated[
    Principal, Depends(require_any(Action.REFERRAL_READ_OWN, Action.REFERRAL_READ_ROUTED))
]
OwnReader = Annotated[Principal, Depends(require(Action.REFERRAL_READ_OWN))]
ConsentChanger = Annotated[Principal, Depends(require(Action.REFERRAL_CONSENT))]
Implicator = Annotated[Principal, Depends(require(Action.REFERRAL_IMPLICATE))]
Recuser = Annotated[
    Principal, Depends(require_any(Action.REFERRAL_READ_OWN, Action.REFERRAL_READ_ROUTED))
]
Withdrawer = Annotated[Principal, Depends(require(Action.REFERRAL_WITHDRAW))]
Identifier = Annotated[Principal, Depends(require(Action.IDENTIFICATION_DECIDE))]
Investigator = Annotated[Principal, Depends(require(Action.INVESTIGATION_RECORD))]

_referral_in: TypeAdapter[VictimReferralIn | TipIn] = TypeAdapter(ReferralIn)
_consent_in: TypeAdapter[Consent] = TypeAdapter(Consent)
_safety_in: TypeAdapter[Safety] = TypeAdapter(Safety)


_identification_in: TypeAdapter[IdentificationIn] = TypeAdapter(IdentificationIn)
_investigation_in: TypeAdapter[InvestigationIn] = TypeAdapter(InvestigationIn)
_implicated_in: TypeAdapter[ImplicatedIn] = TypeAdapter(ImplicatedIn)
_recusal_in: TypeAdapter[RecusalIn] = TypeAdapter(RecusalIn)


def person_of(principal: Principal) -> str | None:
    """The person behind a token (`sub` differs from the client id), if it is one."""
    return principal.person_subject


Config = Annotated[IntakeSettings, Depends(from_state("settings", IntakeSettings))]
Queue = Annotated[SubmissionQueue, Depends(from_state("submissions", SubmissionQueue))]
Purpose = Annotated[str | None, Header(alias="X-Purpose", max_length=500)]


@router.post(
    "",
    status_code=201,
    response_model=Submitted,
    responses={
        200: {"model": Submitted, "description": "A replay of an earlier Idempotency-Key"},
        409: {"description": "The Idempotency-Key was already used with a different body"},
    },
    summary="Submit a victim referral or a tip",
    openapi_extra=body_schema(_referral_in),
)
async def submit(
    request: Request,
    principal: Submitter,
    submissions: Queue,
    settings: Config,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    raw = await read_json(request, limit=settings.max_body_bytes)
    body = parse(_referral_in, raw)
    service.check_region(
        body.region, country=settings.served_country(), path=f"{body.kind.value}/region"
    )
    service.check_implicated(
        body.implicated, known=settings.agencies(), path=f"{body.kind.value}/implicated"
    )
    submission = service.Submission(
        body=body,
        agency=principal.agency,
        client_id=principal.client_id,
        actor=principal.actor,
        idempotency_key=idempotency_key,
        body_hash=hashlib.sha256(raw).hexdigest(),
        traceparent=current_traceparent(),
    )
    outcome = await submissions.submit(submission)
    # Serialised here rather than by FastAPI's response-model pass: this is the hot path.
    answer = {"id": outcome.id, "reference": outcome.reference, "status": outcome.status}
    return Response(
        orjson.dumps(answer),
        status_code=201 if outcome.created else 200,
        media_type="application/json",
        headers={"Location": f"/v1/referrals/{outcome.id}"},
    )


@router.get("", summary="Referrals the caller's agency submitted or was sent")
async def list_referrals(
    principal: Reader,
    settings: Config,
    session: ReadSession,
    # Patterns, not just lengths: PostgreSQL refuses a NUL byte in a text parameter (was a 500).
    status: Annotated[str | None, Query(max_length=20, pattern=r"^[a-z_]+$")] = None,
    urgency: Urgency | None = None,
    region: Annotated[str | None, Query(max_length=10, pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    cursor: Annotated[Key | None, cursor_key(*repository.CURSOR)] = None,
    limit: Limit100 = 50,
) -> ReferralPage:
    page = await repository.list_referrals(
        session,
        agency=principal.agency,
        as_submitter=Role.REFERRER in principal.roles,
        as_recipient=bool(principal.roles & {Role.CASEWORKER, Role.SUPERVISOR}),
        person=person_of(principal),
        status=status,
        urgency=urgency.value if urgency else None,
        region=region,
        since=since,
        until=until,
        cursor=cursor,
        limit=min(limit, settings.page_size_max),
    )
    items = [
        ReferralSummary(
            id=r.id,
            reference=r.reference,
            kind=r.kind,
            status=r.status,
            urgency=r.urgency,
            region=r.region,
            exploitation=r.facts["exploitation"],
            submitted_by=r.submitted_by,
            submitted_at=r.created_at,
        )
        for r in page.items
    ]
    return ReferralPage(items=items, next_cursor=page.next_cursor)


@router.get("/{referral_id}", summary="A referral, filtered by the caller's disclosure level")
async def get_referral(
    referral_id: str,
    principal: Reader,
    runtime: Runtime,
    vault: Keys,
    purpose: Purpose = None,
) -> dict[str, Any]:
    try:
        # Closed before the access record's own transaction: one connection at a time.
        async with runtime.sessions() as session:
            found = await service.visible(
                session,
                referral_id=referral_id,
                agency=principal.agency,
                as_submitter=Role.REFERRER in principal.roles,
                as_recipient=bool(principal.roles & {Role.CASEWORKER, Role.SUPERVISOR}),
                person=person_of(principal),
            )
            row, disclosure = found.row, found.disclosure
            ident, inv = await service.progress(session, referral_id)
    except NotFound as exc:
        exc.audited = True  # here, with the purpose
        await runtime.access_audit.emit(
            AccessDenied(
                action="referral.read",
                resource_type="referral",
                resource_id=referral_id[:64],
                agency=principal.agency,
                client_id=principal.client_id,
                actor=principal.actor,
                purpose=purpose,
                reason="not the submitter or a known recipient",
            ),
            subject=referral_id[:64],
            agency=principal.agency,
        )
        raise
    view = service.render(
        row, disclosure, vault, viewer=principal.agency, submitter=found.submitter
    )
    if row.kind != "tip":
        view["identification"] = service.identification_view(ident)
    view["investigation"] = service.investigation_view(inv, vault, disclosure=disclosure)
    await runtime.access_audit.emit(
        AccessGranted(
            action="referral.read",
            resource_type="referral",
            resource_id=row.id,
            agency=principal.agency,
            client_id=principal.client_id,
            actor=principal.actor,
            disclosure=disclosure,
            purpose=purpose,
        ),
        subject=row.id,
        agency=principal.agency,
    )
    return view


@router.put(
    "/{referral_id}/consent",
    summary="Record the victim's current consent (the submitter, or a recipient at `support` "
    "or above, stating language, interpreter and form)",
    responses={409: {"description": "The referral is a tip (no consent) or was withdrawn"}},
    openapi_extra=body_schema(_consent_in),
)
async def put_consent(
    referral_id: str,
    principal: ConsentChanger,
    consent: Annotated[Consent, Depends(json_body(_consent_in))],
    session: WriteSession,
) -> ConsentOut:
    row = await service.change_consent(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        consent=consent,
        person=person_of(principal),
        actor=principal.actor,
    )
    assert row.consent is not None
    return ConsentOut(id=row.id, consent=row.consent)


@router.put(
    "/{referral_id}/safety",
    summary="Record a new safety assessment (the submitter, or a recipient at `support` or above)",
    responses={409: {"description": "The referral is a tip (no assessment) or was withdrawn"}},
    openapi_extra=body_schema(_safety_in),
)
async def put_safety(
    referral_id: str,
    principal: ConsentChanger,
    safety: Annotated[Safety, Depends(json_body(_safety_in))],
    session: WriteSession,
) -> SafetyOut:
    row = await service.change_safety(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        safety=safety,
        person=person_of(principal),
        actor=principal.actor,
    )
    return SafetyOut(id=row.id, urgency=row.urgency, safety=row.profile["safety"])


@router.put(
    "/{referral_id}/implicated",
    summary="Name agencies implicated in the case (the submitter, or a prosecutor or coordinator "
    "recipient); they are left out of routing and refused the referral",
    openapi_extra=body_schema(_implicated_in),
)
async def put_implicated(
    referral_id: str,
    principal: Implicator,
    body: Annotated[ImplicatedIn, Depends(json_body(_implicated_in))],
    settings: Config,
    session: WriteSession,
) -> ImplicatedOut:
    service.check_implicated(body.implicated, known=settings.agencies(), path="implicated")
    row = await service.name_implicated(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        agencies=body.implicated,
        overseers=settings.overseers(),
        person=person_of(principal),
        actor=principal.actor,
    )
    return ImplicatedOut(id=row.id, implicated=repository.implicated(row))


async def _recusal_body(request: Request, settings: Config) -> RecusalIn:
    """The optional body of a recusal (none at all is an empty one)."""
    has_body = (
        request.headers.get("content-type") or request.headers.get("content-length", "0") != "0"
    )
    raw = await read_json(request, limit=settings.max_body_bytes) if has_body else b"{}"
    body: RecusalIn = parse(_recusal_in, raw)
    return body


@router.post(
    "/{referral_id}/recusal",
    status_code=204,
    summary="Step away from a referral (a person, for a conflict of interest): refused from now on",
    responses={409: {"description": "The token is a system client's: only a person recuses"}},
    openapi_extra=body_schema(_recusal_in),
)
async def post_recusal(
    referral_id: str,
    principal: Recuser,
    body: Annotated[RecusalIn, Depends(_recusal_body)],
    session: WriteSession,
) -> Response:
    person = person_of(principal)
    await service.recuse(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        person=person,
        reason=body.reason,
        actor=principal.actor,
    )
    return Response(status_code=204)


@router.post("/{referral_id}/withdraw", summary="Withdraw a referral (submitting agency only)")
async def post_withdraw(
    referral_id: str, principal: Withdrawer, session: WriteSession
) -> Submitted:
    row = await service.withdraw(
        session, referral_id=referral_id, agency=principal.agency, actor=principal.actor
    )
    return Submitted(id=row.id, reference=row.reference, status=row.status)


@router.get("/{referral_id}/status", summary="Who was sent the referral and what they did")
async def get_status(
    referral_id: str, principal: OwnReader, session: ReadSession
) -> ReferralStatus:
    row, recipients = await service.recipients(
        session, referral_id=referral_id, agency=principal.agency
    )
    ident, inv = await service.progress(session, referral_id)
    held = await retention.holds(session, referral_id)
    identification = service.identification_view(ident)
    investigation = service.investigation_view(inv, None, disclosure=Disclosure.SUPPORT)
    return ReferralStatus(
        id=row.id,
        reference=row.reference,
        recipients=[
            RecipientStatus(
                agency=r.agency,
                disclosure=service.effective_disclosure(r, row.consent).value,
                status=r.status,
                deadline=r.deadline,
                rule=r.rule,
            )
            for r in recipients
        ],
        identification=IdentificationStatus.model_validate(identification)
        if identification
        else None,
        investigation=InvestigationStatus.model_validate(investigation) if investigation else None,
        holds=[HoldOut(agency=h.agency, placed_at=h.placed_at) for h in held],
    )


@router.post(
    "/{referral_id}/identification",
    summary="Record an identification decision (a supervisor of the competent authority): "
    "`reasonable_grounds` or `no_reasonable_grounds`, then `confirmed` or `not_confirmed`",
    openapi_extra=body_schema(_identification_in),
    responses={409: {"description": "Not a legal step, or the reflection period is not over"}},
)
async def post_identification(
    referral_id: str,
    principal: Identifier,
    body: Annotated[IdentificationIn, Depends(json_body(_identification_in))],
    session: WriteSession,
) -> IdentificationStatus:
    ident = await service.decide_identification(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        decision=body.decision,
        decided_at=body.decided_at,
        basis=body.basis,
        person=person_of(principal),
        actor=principal.actor,
    )
    return IdentificationStatus.model_validate(service.identification_view(ident))


@router.post(
    "/{referral_id}/investigation",
    summary="Record whether a pre-trial investigation was opened (a law-enforcement agency "
    "the referral was sent to); the number is sealed and shown at `full` only",
    openapi_extra=body_schema(_investigation_in),
)
async def post_investigation(
    referral_id: str,
    principal: Investigator,
    body: Annotated[InvestigationIn, Depends(json_body(_investigation_in))],
    settings: Config,
    vault: Keys,
    session: WriteSession,
) -> InvestigationStatus:
    inv = await service.record_investigation(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        investigators=settings.investigators(),
        opened=body.opened,
        on=body.date,
        number=body.number,
        vault=vault,
        person=person_of(principal),
        actor=principal.actor,
    )
    return InvestigationStatus(opened=inv.opened, date=inv.date, agency=inv.agency)


@clocks.get(
    "",
    summary="Identification clocks still running, soonest due first: every authority's for the "
    "national coordinator's supervisors, the authority's own for its supervisors",
)
async def list_clocks(
    principal: Identifier,
    settings: Config,
    session: ReadSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RunningClocks:
    rows = await service.running_clocks(
        session,
        agency=principal.agency,
        everyone=principal.agency in settings.coordinators(),
        limit=limit,
    )
    return RunningClocks(
        items=[
            RunningClock(
                referral_id=ident.referral_id,
                reference=reference,
                **service.identification_view(ident) or {},
            )
            for ident, reference in rows
        ]
    )


# Retention and erasure (issue 23)

HoldPlacer = Annotated[Principal, Depends(require(Action.LEGAL_HOLD))]
ErasureRequester = Annotated[Principal, Depends(require(Action.ERASURE_REQUEST))]
ErasureApprover = Annotated[Principal, Depends(require(Action.ERASURE_APPROVE))]
ErasureCanceller = Annotated[
    Principal, Depends(require_any(Action.ERASURE_REQUEST, Action.ERASURE_APPROVE))
]
SubjectAccess = Annotated[Principal, Depends(require(Action.SUBJECT_ACCESS))]
Ledger = Annotated[ErasureLedger, Depends(from_state("ledger", ErasureLedger))]
AuditHttp = Annotated[httpx.AsyncClient, Depends(from_state("audit_http", httpx.AsyncClient))]

retention_router = APIRouter(prefix="/v1/retention", tags=["retention"])


_erasure_in: TypeAdapter[ErasureIn] = TypeAdapter(ErasureIn)


async def _holds_of(session: Any, row_id: str, reference: str) -> Holds:
    held = await retention.holds(session, row_id)
    return Holds(
        id=row_id,
        reference=reference,
        holds=[HoldOut(agency=h.agency, placed_at=h.placed_at) for h in held],
    )


HoldReader = Annotated[Principal, Depends(require_any(Action.LEGAL_HOLD, Action.ERASURE_REQUEST))]


@router.get(
    "/{referral_id}/hold",
    summary="The legal holds standing on the referral (a law-enforcement or prosecutor agency "
    "the referral was sent to, or a supervisor of the national coordinator)",
)
async def get_hold(
    referral_id: str, principal: HoldReader, settings: Config, session: ReadSession
) -> Holds:
    row, held = await retention.visible_holds(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        investigators=settings.investigators(),
        coordinators=settings.coordinators(),
        may_request_erasure=Role.SUPERVISOR in principal.roles,
        person=person_of(principal),
    )
    return Holds(
        id=row.id,
        reference=row.reference,
        holds=[HoldOut(agency=h.agency, placed_at=h.placed_at) for h in held],
    )


@router.post(
    "/{referral_id}/hold",
    summary="Place the caller's agency's legal hold (a law-enforcement or prosecutor agency the "
    "referral was sent to, while an investigation is open): nothing is erased while it stands",
    responses={409: {"description": "No investigation is open on the referral"}},
)
async def post_hold(
    referral_id: str, principal: HoldPlacer, settings: Config, session: WriteSession
) -> Holds:
    row = await retention.place_hold(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        investigators=settings.investigators(),
        person=person_of(principal),
        actor=principal.actor,
    )
    return await _holds_of(session, row.id, row.reference)


@router.delete(
    "/{referral_id}/hold",
    status_code=204,
    summary="Lift the legal hold the caller's agency placed",
    responses={409: {"description": "The caller's agency has placed no hold on the referral"}},
)
async def delete_hold(
    referral_id: str, principal: HoldPlacer, settings: Config, session: WriteSession
) -> Response:
    await retention.lift_hold(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        investigators=settings.investigators(),
        person=person_of(principal),
        actor=principal.actor,
    )
    return Response(status_code=204)


@router.post(
    "/{referral_id}/erasure",
    status_code=202,
    summary="Ask for the referral's erasure, with its legal basis (a supervisor of the national "
    "coordinator); a `dpo` approves it (POST .../erasure/approve)",
    openapi_extra=body_schema(_erasure_in),
    responses={
        409: {
            "description": "A legal hold stands, another basis is pending, or it was erased",
        }
    },
)
async def post_erasure(
    referral_id: str,
    principal: ErasureRequester,
    body: Annotated[ErasureIn, Depends(json_body(_erasure_in))],
    settings: Config,
    session: WriteSession,
) -> ErasureOut:
    pending = await retention.request_erasure(
        session,
        referral_id=referral_id,
        agency=principal.agency,
        coordinators=settings.coordinators(),
        basis=body.basis,
        actor=principal.actor,
    )
    return ErasureOut(
        id=referral_id,
        status="erasure_requested",
        basis=ErasureBasis(pending.basis),
        requested_by=pending.requested_by,
        requested_at=pending.requested_at,
    )


@router.delete(
    "/{referral_id}/erasure",
    status_code=204,
    summary="Cancel a pending erasure (the national coordinator's supervisor) or refuse it "
    "(a `dpo`)",
    responses={409: {"description": "No erasure is pending, or the referral was erased"}},
)
async def delete_erasure(
    referral_id: str, principal: ErasureCanceller, settings: Config, session: WriteSession
) -> Response:
    if Role.DPO not in principal.roles and principal.agency not in settings.coordinators():
        raise NotFound("No such referral.")
    await retention.cancel_erasure(
        session, referral_id=referral_id, agency=principal.agency, actor=principal.actor
    )
    return Response(status_code=204)


@router.post(
    "/{referral_id}/erasure/approve",
    summary="Approve a pending erasure (a `dpo`, not the person who asked): the referral's "
    "keys and data are destroyed at once",
    responses={
        409: {
            "description": "Nothing pending, a legal hold stands, the approver asked for it, "
            "or it was already erased"
        }
    },
)
async def post_erasure_approve(
    referral_id: str, principal: ErasureApprover, runtime: Runtime, ledger: Ledger
) -> ErasureOut:
    async with transaction(runtime.sessions) as session:
        row = await retention.approve_erasure(
            session,
            referral_id=referral_id,
            agency=principal.agency,
            actor=principal.actor,
            ledger=ledger,
            now=datetime.now(UTC),
        )
        basis, erased_at = ErasureBasis(row.erasure_basis or ""), row.erased_at
    # After the commit, not in it: settling rewrites the database files (SQLite's write-ahead log).
    await retention.settle(runtime.engine)
    return ErasureOut(id=referral_id, status="erased", basis=basis, erased_at=erased_at)


SUBJECT_ACCESS_TYPES = {
    "application/json": "application/json",
    "text/html": "text/html; charset=utf-8",
    "text/markdown": "text/markdown; charset=utf-8",
}


@router.get(
    "/{referral_id}/subject-access",
    summary="Everything held on one referral, for its subject (a `dpo`): the data at `full`, "
    "its recipients and their disclosure levels, and every access recorded by audit; JSON, "
    "or a printable document (`Accept: text/html` or `text/markdown`)",
    responses={
        200: {
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "text/markdown": {"schema": {"type": "string"}},
            }
        },
        410: {"description": "The referral was erased: nothing is held"},
        503: {"description": "The audit service could not be read"},
    },
)
async def get_subject_access(
    referral_id: str,
    request: Request,
    principal: SubjectAccess,
    runtime: Runtime,
    vault: Keys,
    audit: AuditHttp,
    purpose: Purpose = None,
) -> Response:
    # Closed before the audit service is called and the access recorded: no connection held
    # across the HTTP round trip, nor two at once.
    async with runtime.sessions() as session:
        held = await retention.subject_access(session, referral_id=referral_id, vault=vault)
    accesses = await retention.access_records(
        audit,
        referral_id=referral_id,
        authorization=request.headers.get("authorization", ""),
    )
    await runtime.access_audit.emit(
        AccessGranted(
            action="subject_access.read",
            resource_type="referral",
            resource_id=referral_id,
            agency=principal.agency,
            client_id=principal.client_id,
            actor=principal.actor,
            disclosure=Disclosure.FULL,
            purpose=purpose,
        ),
        subject=referral_id,
        agency=principal.agency,
    )
    document = retention.subject_access_document(
        held, accesses=accesses, produced_by=principal.actor, produced_at=datetime.now(UTC)
    )
    media = _preferred(request.headers.get("accept", ""))
    if media == "text/html":
        body = retention.as_html(document).encode()
    elif media == "text/markdown":
        body = retention.as_markdown(document).encode()
    else:
        body = orjson.dumps(document)
    return Response(body, media_type=SUBJECT_ACCESS_TYPES[media])


def _preferred(accept: str) -> str:
    """The first of the document's types the Accept header names (JSON by default)."""
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in SUBJECT_ACCESS_TYPES:
            return media
    return "application/json"


@retention_router.get(
    "/erasures",
    summary="Erasures waiting for a `dpo`'s approval, oldest referral first: the national "
    "coordinator's supervisors and the `dpo`",
)
async def get_erasures(
    principal: ErasureCanceller,
    settings: Config,
    session: ReadSession,
    referral: Annotated[
        str | None, Query(pattern=UUID_PATTERN, description="One referral's request only")
    ] = None,
    cursor: Annotated[Key | None, cursor_key(*repository.CURSOR)] = None,
    limit: Limit100 = 50,
) -> PendingErasures:
    if Role.DPO not in principal.roles and principal.agency not in settings.coordinators():
        raise NotFound("Not found.")
    page = await retention.pending_erasures(
        session,
        referral_id=referral,
        cursor=cursor,
        limit=min(limit, settings.page_size_max),
    )
    return PendingErasures(
        items=[
            PendingErasure(
                referral_id=p.request.referral_id,
                reference=p.reference,
                basis=ErasureBasis(p.request.basis),
                requested_at=p.request.requested_at,
                requested_by=p.request.requested_by,
                requested_by_actor=p.request.requested_by_actor,
                held=p.held,
            )
            for p in page.items
        ],
        next_cursor=page.next_cursor,
    )


@retention_router.get(
    "/due",
    summary="Referrals whose retention period ends within `within_days` (or has ended), soonest "
    "first: the national coordinator's supervisors and the `dpo`",
)
async def get_due(
    principal: ErasureCanceller,
    settings: Config,
    session: ReadSession,
    within_days: Annotated[int, Query(ge=0, le=3650)] = 30,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> DueList:
    if Role.DPO not in principal.roles and principal.agency not in settings.coordinators():
        raise NotFound("Not found.")
    schedule = load_retention(settings.policy_path)
    now = retention.clock(settings)
    until = now + timedelta(days=within_days)
    items: list[retention.Due] = []
    if schedule is not None:
        items = await retention.retention_due(session, retention=schedule, until=until, limit=limit)
    return DueList(
        now=now,
        until=until,
        items=[
            DueItem(
                referral_id=d.referral_id,
                reference=d.reference,
                outcome=d.outcome.value,
                reached_at=d.reached,
                due=d.due,
                held=d.held,
                minor=d.minor,
            )
            for d in items
        ],
    )
