"""Retention and erasure pages (issue 23): the `dpo`'s landing page (pending erasure requests
to approve or refuse, what falls due, each referral's subject-access document), and the forms
on the referral page (a supervisor of the national coordinator asks for an erasure; a
law-enforcement or prosecutor recipient places or lifts its legal hold). Thin like api.py:
intake decides who may do what, and its refusals are shown on the page.

The `dpo` has no routine case access: nothing here links a referral's page for them, and
the subject-access document is read only when they open it (each read is audited)."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from contracts.vocabulary import ErasureBasis
from services.common.pagination import CURSOR_MAX_LENGTH
from services.console import pages
from services.console.api import API, Csrf, Forbidden, NotFound, Person, needs, refusal

router = APIRouter(prefix="/console")

BASES = [b.value for b in ErasureBasis]
DUE_WITHIN_DAYS = 30
# Intake's `next_cursor`, passed back to it (services.common.pagination); "" for the first page.
Cursor = Annotated[str, Query(max_length=CURSOR_MAX_LENGTH, pattern=r"^[A-Za-z0-9_-]*$")]


def _flash(request: Request, ok: bool, text: str) -> None:
    request.session["flash"] = {"ok": ok, "text": text}


def _rid(referral_id: str) -> str:
    return referral_id[:64]


@router.get("/erasure", include_in_schema=False)
async def erasure(request: Request, user: Person, api: API, cursor: Cursor = "") -> Response:
    """Pending requests (intake answers the `dpo` and the coordinator's supervisors only: 404
    to anyone else, shown as not allowed) and the referrals due for erasure."""
    needs(user, "dpo", "supervisor")
    params = [("limit", "50")] + ([("cursor", cursor)] if cursor else [])
    r = await api.call(request.session, "GET", "/v1/retention/erasures", params=params)
    if r.status_code == 404:
        raise Forbidden
    pending: list[dict[str, Any]] = []
    next_cursor = problem = None
    if r.status_code == 200:
        pending, next_cursor = r.json()["items"], r.json().get("next_cursor")
    else:
        problem = refusal(r)
    d = await api.call(
        request.session,
        "GET",
        "/v1/retention/due",
        params=[("within_days", str(DUE_WITHIN_DAYS)), ("limit", "200")],
    )
    due = d.json()["items"] if d.status_code == 200 else []
    return pages.render(
        request,
        "erasure.html.j2",
        pending=pending,
        next_cursor=next_cursor,
        problem=problem,
        due=due,
        due_days=DUE_WITHIN_DAYS,
        is_dpo="dpo" in user["roles"],
        flash=request.session.pop("flash", None),
    )


@router.post("/erasure/{referral_id}/approve", include_in_schema=False, dependencies=[Csrf])
async def approve(
    request: Request,
    referral_id: str,
    user: Person,
    api: API,
    reference: Annotated[str, Form(max_length=40)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The second person of the two-person rule. Irreversible: the form's confirmation box
    must be ticked (the browser asks for it; this checks it again)."""
    needs(user, "dpo")
    et = pages.ERASURE_TEXT[pages.language(request)]
    if confirm != "yes":
        _flash(request, False, et["confirm_needed"])
    else:
        r = await api.call(
            request.session, "POST", f"/v1/referrals/{_rid(referral_id)}/erasure/approve"
        )
        if r.status_code == 200:
            _flash(request, True, et["approved"].format(reference=reference))
        else:  # 409: nothing pending any more, a hold stands, or the approver asked for it
            _flash(request, False, refusal(r))
    return RedirectResponse("/console/erasure", status_code=303)


@router.post("/erasure/{referral_id}/refuse", include_in_schema=False, dependencies=[Csrf])
async def refuse(
    request: Request,
    referral_id: str,
    user: Person,
    api: API,
    reference: Annotated[str, Form(max_length=40)] = "",
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The `dpo` refuses a request, or the coordinator's supervisor withdraws it (from the
    erasure page or the referral page: `back`)."""
    needs(user, "dpo", "supervisor")
    et = pages.ERASURE_TEXT[pages.language(request)]
    rid = _rid(referral_id)
    r = await api.call(request.session, "DELETE", f"/v1/referrals/{rid}/erasure")
    if back == "referral" and "dpo" not in user["roles"]:
        if r.status_code == 404:
            raise NotFound
        if r.status_code != 204:  # the referral page shows a refusal, not a success
            request.session["flash"] = refusal(r)
        return RedirectResponse(f"/console/referrals/{rid}", status_code=303)
    if r.status_code == 204:
        dpo = "dpo" in user["roles"]
        _flash(request, True, et["refused"].format(reference=reference) if dpo else et["withdrawn"])
    else:
        _flash(request, False, refusal(r))
    return RedirectResponse("/console/erasure", status_code=303)


@router.get("/erasure/{referral_id}/subject-access", include_in_schema=False)
async def subject_access(request: Request, referral_id: str, user: Person, api: API) -> Response:
    """The referral's subject-access document as a printable page (intake's JSON, rendered
    here so the page keeps the console's language, stylesheet and headers)."""
    needs(user, "dpo")
    rid = _rid(referral_id)
    r = await api.call(request.session, "GET", f"/v1/referrals/{rid}/subject-access")
    et = pages.ERASURE_TEXT[pages.language(request)]
    if r.status_code == 410:
        return pages.render(
            request, "message.html.j2", status=410, heading=et["erased"], message=et["gone"]
        )
    if r.status_code != 200:  # 404; 503 when audit could not be read (the document is whole)
        if r.status_code == 404:
            raise NotFound
        return pages.render(
            request,
            "message.html.j2",
            status=r.status_code,
            heading=et["subject_access"],
            message=refusal(r),
        )
    doc = r.json()
    return pages.render(
        request,
        "subject_access.html.j2",
        doc=doc,
        data=flatten(doc["data"]),
        produced=et["produced"].format(at=doc["produced_at"], by=doc["produced_by"]),
    )


DOWNLOADS = {"html": "text/html", "md": "text/markdown"}


@router.get("/erasure/{referral_id}/subject-access.{fmt}", include_in_schema=False)
async def subject_access_download(
    request: Request, referral_id: str, fmt: str, user: Person, api: API
) -> Response:
    """Intake's own printable forms of the document, as a file to hand over."""
    needs(user, "dpo")
    if fmt not in DOWNLOADS:
        raise NotFound
    rid = _rid(referral_id)
    r = await api.call(
        request.session,
        "GET",
        f"/v1/referrals/{rid}/subject-access",
        headers={"Accept": DOWNLOADS[fmt]},
    )
    if r.status_code != 200:
        raise NotFound
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(
        r.content,
        media_type=r.headers.get("content-type", DOWNLOADS[fmt]),
        headers={
            "Content-Disposition": f'attachment; filename="subject-access-{rid}-{stamp}.{fmt}"',
            "Cache-Control": "no-store",
            # Opened in a browser, intake's HTML runs nothing and loads nothing.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
        },
    )


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted field, value) pairs of the nested document, for its table."""
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        rows = []
        for i, item in enumerate(value):
            rows += flatten(item, f"{prefix}[{i}]")
        return rows
    if isinstance(value, list):
        return [(prefix, ", ".join(str(v) for v in value) or None)]
    return [(prefix, value)]


# On the referral page


@router.post("/referrals/{referral_id}/erasure", include_in_schema=False, dependencies=[Csrf])
async def request_erasure(
    request: Request,
    referral_id: str,
    user: Person,
    api: API,
    basis: Annotated[str, Form(max_length=40)],
) -> Response:
    needs(user, "supervisor")
    rid = _rid(referral_id)
    r = await api.call(
        request.session, "POST", f"/v1/referrals/{rid}/erasure", json_body={"basis": basis}
    )
    if r.status_code == 404:
        raise NotFound
    if r.status_code >= 400:  # 409 (a hold, another basis pending), 422: on the page
        request.session["flash"] = refusal(r)
    return RedirectResponse(f"/console/referrals/{rid}", status_code=303)


@router.post("/referrals/{referral_id}/hold", include_in_schema=False, dependencies=[Csrf])
@router.post("/referrals/{referral_id}/hold/lift", include_in_schema=False, dependencies=[Csrf])
async def hold(request: Request, referral_id: str, user: Person, api: API) -> Response:
    """Place (or lift) the person's agency's legal hold."""
    needs(user, "caseworker", "supervisor")
    rid = _rid(referral_id)
    method = "DELETE" if request.url.path.endswith("/lift") else "POST"
    r = await api.call(request.session, method, f"/v1/referrals/{rid}/hold")
    if r.status_code == 404:
        raise NotFound
    if r.status_code >= 400:  # 409: no open investigation, or no hold of the agency's
        request.session["flash"] = refusal(r)
    return RedirectResponse(f"/console/referrals/{rid}", status_code=303)
