"""The console's pages (thin: each calls the services' public APIs as the person and renders
the answer). Every form carries the session's CSRF token; every page is no-store."""

import csv
import hmac
import io
import json
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from contracts.topics import CATALOGUE
from contracts.vocabulary import ErasureBasis, IdentificationBasis
from services.common.pagination import CURSOR_MAX_LENGTH
from services.console import charts, forms, pages
from services.console.service import LANGUAGES, Backend, SignedOut

router = APIRouter(prefix="/console")

ACTIONS = ("acknowledge", "accept", "decline", "complete")
# Which delivery actions each state allows (notify refuses the others with 409 anyway).
ALLOWED: dict[str, tuple[str, ...]] = {
    "pending": ("acknowledge",),
    "notified": ("acknowledge",),
    "escalated": ("acknowledge",),
    "acknowledged": ("accept", "decline"),
    "accepted": ("complete",),
}
OPEN = ("pending", "notified", "escalated")


class NeedsSignIn(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Forbidden(Exception):
    pass


class NotFound(Exception):
    pass


class CsrfRefused(Exception):
    pass


def backend(request: Request) -> Backend:
    b: Backend = request.app.state.backend
    return b


def person(request: Request) -> dict[str, Any]:
    user: dict[str, Any] | None = request.session.get("user")
    if not user or not request.session.get("token"):
        raise NeedsSignIn(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return user


Person = Annotated[dict[str, Any], Depends(person)]
API = Annotated[Backend, Depends(backend)]


def needs(user: dict[str, Any], *roles: str) -> None:
    if not set(user.get("roles", [])) & set(roles):
        raise Forbidden


async def check_csrf(request: Request) -> None:
    form = await request.form()
    sent = str(form.get("csrf", ""))
    expected = str(request.session.get("csrf", ""))
    if not expected or not hmac.compare_digest(sent, expected):
        raise CsrfRefused


Csrf = Depends(check_csrf)


def refusal(r: httpx.Response) -> str:
    """A service's problem+json as one line: its detail and each field's message."""
    try:
        problem: dict[str, Any] = r.json()
    except ValueError:
        return f"{r.status_code}"
    text = str(problem.get("detail") or problem.get("title") or r.status_code)
    errors = [f"{e.get('path', '')}: {e.get('message', '')}" for e in problem.get("errors", [])]
    return "; ".join([text, *errors]) if errors else text


def landing(user: dict[str, Any]) -> str:
    roles = set(user.get("roles", []))
    if roles & {"caseworker", "supervisor"}:
        return "/console/inbox"
    if "auditor" in roles:
        return "/console/audit"
    if "referrer" in roles:
        return "/console/referrals"
    if "admin" in roles:
        return "/console/admin/agencies"
    if "analyst" in roles:
        return "/console/statistics"
    if "dpo" in roles:
        return "/console/erasure"
    return "/console/"


def time_left(deadline: str | None, status: str, t: dict[str, str]) -> tuple[str, bool]:
    """The deadline as time remaining, and whether it has passed while still unacknowledged."""
    if not deadline:
        return "", False
    due = datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    seconds = (due - datetime.now(UTC)).total_seconds()
    overdue = seconds < 0 and status in OPEN
    minutes = int(abs(seconds) // 60)
    text = f"{minutes // 60} {t['hours']} {minutes % 60} {t['minutes']}"
    return (f"{t['past_due']} {text}" if seconds < 0 else text), overdue


# Sign-in and sign-out


def oauth(request: Request) -> OAuth:
    client: OAuth = request.app.state.oauth()
    return client


@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    user = request.session.get("user")
    if user and request.session.get("token") and landing(user) != "/console/":
        return RedirectResponse(landing(user), status_code=303)
    return pages.render(request, "home.html.j2")


@router.get("/login", include_in_schema=False)
async def login(
    request: Request,
    next: Annotated[str, Query(max_length=500)] = "",
    lang: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    if lang in LANGUAGES:
        request.session["lang"] = lang
    request.session["next"] = next if next.startswith("/console/") and "//" not in next else ""
    settings = request.app.state.settings
    redirect_uri = settings.console_base + "/console/callback"
    response: Response = await oauth(request).identity.authorize_redirect(
        request, redirect_uri, lang=pages.language(request)
    )
    response.headers.update(pages.page_headers(request))
    return response


@router.get("/callback", include_in_schema=False)
async def callback(request: Request, api: API) -> Response:
    try:
        token = await oauth(request).identity.authorize_access_token(request)
    except OAuthError:
        return RedirectResponse("/console/", status_code=303)
    info = await api.http.get(
        api.url("/oauth/userinfo"), headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    if info.status_code != 200:
        return RedirectResponse("/console/", status_code=303)
    claims = info.json()
    chosen = request.session.get("lang")
    next_path = request.session.get("next") or ""
    request.session.clear()
    request.scope["console.renew"] = True  # a new session id once signed in
    user = {
        "username": claims["preferred_username"],
        "agency": claims["agency"],
        "roles": claims["roles"],
    }
    request.session.update(
        user=user,
        token={k: token[k] for k in ("access_token", "refresh_token", "expires_at", "id_token")},
        csrf=secrets.token_urlsafe(32),
        lang=chosen or request.app.state.languages.get(user["agency"], "en"),
    )
    return RedirectResponse(next_path or landing(user), status_code=303)


@router.post("/signout", include_in_schema=False, dependencies=[Csrf])
async def signout(request: Request, api: API) -> Response:
    """Revoke the refresh token, forget the session, end the sign-in at identity."""
    id_token = (request.session.get("token") or {}).get("id_token")
    await api.end(request.session)
    request.session.clear()
    settings = request.app.state.settings
    issuer = settings.auth_issuer.rstrip("/")
    query = {
        "post_logout_redirect_uri": settings.console_base + "/console/",
        "client_id": settings.client_id,
    }
    if id_token:
        query["id_token_hint"] = id_token
    return RedirectResponse(f"{issuer}/oauth/logout?{urlencode(query)}", status_code=303)


@router.get("/lang/{code}", include_in_schema=False)
async def choose_language(
    request: Request, code: str, next: Annotated[str, Query(max_length=500)] = "/console/"
) -> Response:
    if code in LANGUAGES:
        request.session["lang"] = code
    # Back to the page it was chosen on (no Referer: the stack sends no-referrer).
    back = next if next.startswith("/console/") and "//" not in next else "/console/"
    return RedirectResponse(back, status_code=303)


# Inbox


async def _inbox_rows(
    request: Request, api: Backend, status: str | None, urgency: str | None, overdue: bool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The agency's deliveries as notify filters them (status, urgency, overdue)."""
    params = [("limit", "100")]
    if status:
        params.append(("status", status))
    if urgency:
        params.append(("urgency", urgency))
    if overdue:
        params.append(("overdue", "true"))
    chosen = {"status": status or "", "urgency": urgency or "", "overdue": overdue}
    r = await api.call(request.session, "GET", "/v1/inbox", params=params)
    if r.status_code == 422:  # a filter value notify does not know: nothing matches it
        return [], chosen
    r.raise_for_status()
    t = pages.TEXT[pages.language(request)]
    rows = []
    for item in r.json()["items"]:
        left, late = time_left(item.get("deadline"), item["status"], t)
        rows.append({**item, "time_left": left, "overdue": late})
    return rows, chosen


Status = Annotated[str | None, Query(max_length=20)]
Urgency = Annotated[str | None, Query(max_length=20)]


@router.get("/inbox", include_in_schema=False)
async def inbox(
    request: Request,
    user: Person,
    api: API,
    status: Status = None,
    urgency: Urgency = None,
    overdue: bool = False,
) -> Response:
    needs(user, "caseworker", "supervisor")
    rows, chosen = await _inbox_rows(request, api, status or None, urgency or None, overdue)
    return pages.render(
        request,
        "inbox.html.j2",
        rows=rows,
        chosen=chosen,
        flash=request.session.pop("flash", None),
    )


@router.get("/inbox/items", include_in_schema=False)
async def inbox_items(
    request: Request,
    user: Person,
    api: API,
    status: Status = None,
    urgency: Urgency = None,
    overdue: bool = False,
) -> Response:
    """The inbox table's rows alone, fetched by console.js when the stream says so."""
    needs(user, "caseworker", "supervisor")
    rows, _ = await _inbox_rows(request, api, status or None, urgency or None, overdue)
    return pages.render(request, "inbox_rows.html.j2", rows=rows)


@router.get("/inbox/stream", include_in_schema=False)
async def inbox_stream(request: Request, user: Person, api: API) -> Response:
    """The agency's inbox stream, relayed with the person's token (EventSource cannot send
    one, and the token stays here)."""
    needs(user, "caseworker", "supervisor")
    token = await api.call(request.session, "GET", "/oauth/userinfo")  # refreshes if due
    if token.status_code != 200:
        raise SignedOut
    headers = {"Authorization": f"Bearer {request.session['token']['access_token']}"}
    last = request.headers.get("last-event-id")
    if last:
        headers["Last-Event-ID"] = last[:20]
    upstream = api.http.stream("GET", api.url("/v1/inbox/stream"), headers=headers, timeout=None)

    async def relay() -> AsyncIterator[bytes]:
        async with upstream as r:
            async for chunk in r.aiter_raw():
                if await request.is_disconnected():
                    break
                yield chunk

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={**pages.page_headers(request), "X-Accel-Buffering": "no"},
    )


@router.get("/overview", include_in_schema=False)
async def overview(request: Request, user: Person, api: API) -> Response:
    """The national coordinator's view, from its own inbox (notify shows each agency only its
    deliveries): escalations, referrals that matched no rule, its overdue items."""
    needs(user, "supervisor")
    rows, _ = await _inbox_rows(request, api, None, None, False)
    sections = {
        "escalations": [r for r in rows if r["rule"] == "escalation"],
        "unmatched": [r for r in rows if r["rule"] == "default"],
        "overdue": [r for r in rows if r["overdue"]],
    }
    # Overdue deliveries at every agency (notify answers the coordinator's supervisors only).
    everywhere = None
    r = await api.call(request.session, "GET", "/v1/deliveries/overdue", params=[("limit", "200")])
    if r.status_code == 200:
        t = pages.TEXT[pages.language(request)]
        everywhere = [
            {**item, "time_left": time_left(item.get("deadline"), item["status"], t)[0]}
            for item in r.json()["items"]
        ]
    # Identification clocks still running (intake: every authority's for the coordinator).
    r = await api.call(request.session, "GET", "/v1/identification", params=[("limit", "200")])
    clocks = r.json()["items"] if r.status_code == 200 else None
    return pages.render(
        request, "overview.html.j2", sections=sections, everywhere=everywhere, clocks=clocks
    )


# Statistics


STATISTICS: dict[str, tuple[str, str]] = {
    # chart: (`by`, `measure`); the first dimension is the one drawn
    "monthly": ("month,exploitation", "referrals"),
    "funnel": ("stage", "funnel"),
    "regions": ("region", "referrals"),
    "acknowledge": ("agency", "time_to_acknowledge"),
    "identify": ("agency", "time_to_reasonable_grounds"),
}


@router.get("/statistics", include_in_schema=False)
async def statistics(
    request: Request,
    user: Person,
    api: API,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> Response:
    """Analysts' and the coordinator's supervisors' charts of a calendar year, from insights
    (which decides who may ask: anyone else gets its 404, shown as not allowed)."""
    needs(user, "analyst", "supervisor")
    year = year or datetime.now(UTC).year
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, (by, measure) in STATISTICS.items():
        params = [("from", f"{year}-01"), ("to", f"{year}-12"), ("by", by), ("measure", measure)]
        r = await api.call(request.session, "GET", "/v1/statistics", params=params)
        if r.status_code == 404:
            raise Forbidden
        if r.status_code == 200:
            answers[name] = r.json()
        else:
            errors[name] = refusal(r)
    drawn: dict[str, Any] = {}
    if "monthly" in answers:
        drawn["monthly"] = charts.stacked_chart(answers["monthly"], "month", "exploitation")
    for name in ("funnel", "regions", "acknowledge", "identify"):
        if name in answers:
            drawn[name] = charts.bar_chart(answers[name], STATISTICS[name][0])
    k = next((a["k"] for a in answers.values()), None)
    years = list(range(datetime.now(UTC).year, datetime.now(UTC).year - 6, -1))
    return pages.render(
        request,
        "statistics.html.j2",
        charts=drawn,
        errors=errors,
        year=year,
        years=years if year in years else [year, *years],
        k=k,
        plot=charts.PLOT,
    )


# Referrals


@router.get("/referrals", include_in_schema=False)
async def referrals(request: Request, user: Person, api: API) -> Response:
    r = await api.call(request.session, "GET", "/v1/referrals", params=[("limit", "50")])
    items = r.json()["items"] if r.status_code == 200 else []
    return pages.render(request, "referrals.html.j2", items=items)


FORMS = {"/console/referrals/new": "victim_referral", "/console/tips/new": "tip"}


@router.get("/referrals/new", include_in_schema=False)
@router.get("/tips/new", include_in_schema=False)
async def new_referral(request: Request, user: Person) -> Response:
    needs(user, "referrer")
    kind = FORMS[request.url.path]
    return pages.render(
        request,
        "new_referral.html.j2",
        kind=kind,
        # One key per form shown: a second post of the same form (a double click, the back
        # button) is the same referral at intake, not a new one.
        values={**forms.defaults(kind), "idempotency_key": secrets.token_urlsafe(24)},
        errors={},
        vocab=forms.VOCAB,
    )


@router.post("/referrals/new", include_in_schema=False, dependencies=[Csrf])
@router.post("/tips/new", include_in_schema=False, dependencies=[Csrf])
async def submit_referral(request: Request, user: Person, api: API) -> Response:
    needs(user, "referrer")
    kind = FORMS[request.url.path]
    form = await request.form()
    values = forms.values_of(form)
    body, errors = forms.referral_body(values, kind)
    if not errors:
        key = str(form.get("idempotency_key") or "")[:64]
        r = await api.call(
            request.session,
            "POST",
            "/v1/referrals",
            json_body=body,
            headers={"Idempotency-Key": key} if key else None,
        )
        if r.status_code in (200, 201):
            # Post/redirect/get: reloading the confirmation never submits again.
            return RedirectResponse(f"/console/referrals/{r.json()['id']}/submitted", 303)
        if r.status_code == 422:
            errors = forms.errors_of(r.json())
        else:
            errors = {"": r.json().get("detail", str(r.status_code))}
    return pages.render(
        request,
        "new_referral.html.j2",
        status=422,
        kind=kind,
        values={**values, "idempotency_key": str(form.get("idempotency_key") or "")[:64]},
        errors=errors,
        vocab=forms.VOCAB,
    )


@router.get("/referrals/{referral_id}/submitted", include_in_schema=False)
async def submitted(request: Request, referral_id: str, user: Person, api: API) -> Response:
    """The confirmation after a submission: the reference and a link to follow it."""
    r = await api.call(request.session, "GET", f"/v1/referrals/{referral_id[:64]}")
    if r.status_code != 200:
        raise NotFound
    return pages.render(request, "submitted.html.j2", created=r.json())


@router.get("/referrals/{referral_id}", include_in_schema=False)
async def referral(request: Request, referral_id: str, user: Person, api: API) -> Response:
    r = await api.call(request.session, "GET", f"/v1/referrals/{referral_id[:64]}")
    if r.status_code != 200:
        erased = await _erased_delivery(request, api, user, referral_id[:64])
        if erased is None:
            raise NotFound
        return pages.render(request, "referral_erased.html.j2", status=410, item=erased)
    shown = r.json()
    t = pages.TEXT[pages.language(request)]
    delivery = None
    if set(user["roles"]) & {"caseworker", "supervisor"}:
        d = await api.call(request.session, "GET", "/v1/inbox", params=[("referral", shown["id"])])
        if d.status_code == 200 and d.json()["items"]:
            item = d.json()["items"][0]
            left, late = time_left(item.get("deadline"), item["status"], t)
            delivery = {
                **item,
                "time_left": left,
                "overdue": late,
                "actions": ALLOWED.get(item["status"], ()),
            }
    recipients = None
    holds = None
    if shown.get("disclosure") == "full" and "referrer" in user["roles"]:
        s = await api.call(request.session, "GET", f"/v1/referrals/{shown['id']}/status")
        if s.status_code == 200:
            recipients = [
                {**x, "time_left": time_left(x.get("deadline"), x["status"], t)[0]}
                for x in s.json()["recipients"]
            ]
            holds = s.json().get("holds")
    return pages.render(
        request,
        "referral.html.j2",
        r=shown,
        delivery=delivery,
        recipients=recipients,
        flash=request.session.pop("flash", None),
        **identification_form(user, shown),
        **await retention_panel(request, api, user, shown, holds),
    )


async def _erased_delivery(
    request: Request, api: Backend, user: dict[str, Any], referral_id: str
) -> dict[str, Any] | None:
    """The agency's delivery of an erased referral (intake answers 404 for it, like for any
    referral it does not show): what the page can say about it is that it was erased."""
    if not set(user["roles"]) & {"caseworker", "supervisor"} or not ID.fullmatch(referral_id):
        return None
    d = await api.call(request.session, "GET", "/v1/inbox", params=[("referral", referral_id)])
    items = d.json()["items"] if d.status_code == 200 else []
    erased: dict[str, Any] | None = next((i for i in items if i["status"] == "erased"), None)
    return erased


# Legal holds and erasure on the referral page (the actions are in erasure.py).

ERASURE_BASES = [b.value for b in ErasureBasis]
# Agency types that place legal holds (intake's law-enforcement types; intake decides).
INVESTIGATOR_TYPES = frozenset({"police", "prosecutor", "anti_corruption"})
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def retention_panel(
    request: Request,
    api: Backend,
    user: dict[str, Any],
    shown: dict[str, Any],
    holds: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """What the referral page shows of legal holds and erasure, to whom: the coordinator's
    supervisors ask for an erasure (and see a pending one, and the holds); a law-enforcement
    or prosecutor recipient places or lifts its agency's hold; the submitter sees the holds."""
    rid = shown["id"]
    panel: dict[str, Any] = {
        "may_request_erasure": False,
        "pending_erasure": None,
        "erasure_bases": ERASURE_BASES,
        "may_hold": False,
        "held_by_us": False,
        "investigation_open": bool((shown.get("investigation") or {}).get("opened")),
    }
    if pages.coordinator(request, user):
        e = await api.call(
            request.session, "GET", "/v1/retention/erasures", params=[("referral", rid)]
        )
        if e.status_code == 200:
            panel["may_request_erasure"] = True
            panel["pending_erasure"] = next(iter(e.json()["items"]), None)
    investigator = bool(
        set(user["roles"]) & {"caseworker", "supervisor"}
        and request.app.state.agency_types.get(user["agency"]) in INVESTIGATOR_TYPES
    )
    if panel["may_request_erasure"] or investigator:
        h = await api.call(request.session, "GET", f"/v1/referrals/{rid}/hold")
        if h.status_code == 200:
            holds = h.json()["holds"]
            panel["may_hold"] = investigator
    panel["holds"] = holds
    panel["held_by_us"] = any(h["agency"] == user["agency"] for h in holds or [])
    return panel


# Identification: the competent authority's supervisors decide on the referral page.

NEXT_DECISIONS = {
    "potential": ("reasonable_grounds", "no_reasonable_grounds"),
    "reasonable_grounds": ("confirmed", "not_confirmed"),
}
BASES = [b.value for b in IdentificationBasis]


def identification_form(user: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
    """What the decision form offers this person: nothing unless they are a supervisor of the
    referral's competent authority (intake refuses everyone else anyway)."""
    ident = shown.get("identification") or {}
    mine = "supervisor" in user["roles"] and user.get("agency") == ident.get("authority")
    return {
        "decisions": NEXT_DECISIONS.get(ident.get("status", ""), ()) if mine else (),
        "bases": BASES,
        "now_local": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    }


@router.post(
    "/referrals/{referral_id}/identification", include_in_schema=False, dependencies=[Csrf]
)
async def decide(
    request: Request,
    referral_id: str,
    user: Person,
    api: API,
    decision: Annotated[str, Form(max_length=40)],
    decided_at: Annotated[str, Form(max_length=40)],
    basis: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The form's date and time are UTC (as shown on the page)."""
    needs(user, "supervisor")
    try:
        when = datetime.fromisoformat(decided_at).replace(tzinfo=UTC)
    except ValueError:
        when = None
    if when is None:
        request.session["flash"] = "decided_at: not a date and time"
    else:
        body: dict[str, Any] = {"decision": decision, "decided_at": when.isoformat()}
        if basis:
            body["basis"] = basis
        r = await api.call(
            request.session,
            "POST",
            f"/v1/referrals/{referral_id[:64]}/identification",
            json_body=body,
        )
        if r.status_code == 404:
            raise NotFound
        if r.status_code >= 400:  # 409 (not a legal step, or too early), 422: on the page
            request.session["flash"] = str(r.json().get("detail") or r.json().get("title", ""))
    return RedirectResponse(f"/console/referrals/{referral_id[:64]}", status_code=303)


@router.post("/deliveries/{delivery_id}/{action}", include_in_schema=False, dependencies=[Csrf])
async def act(
    request: Request,
    delivery_id: str,
    action: str,
    user: Person,
    api: API,
    referral: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=500)] = "",
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """`back`: the inbox (acknowledging an erasure there), else the referral's page."""
    needs(user, "caseworker", "supervisor")
    if action not in ACTIONS:
        raise NotFound
    body = {"reason": reason} if action == "decline" else None
    r = await api.call(
        request.session, "POST", f"/v1/deliveries/{delivery_id[:64]}/{action}", json_body=body
    )
    if r.status_code == 404:
        raise NotFound
    if r.status_code >= 400:  # 409 (the state moved on), 422 (no reason): said on the page
        request.session["flash"] = str(r.json().get("detail") or r.json().get("title", ""))
    if back == "inbox":
        return RedirectResponse("/console/inbox", status_code=303)
    return RedirectResponse(f"/console/referrals/{referral}", status_code=303)


# Audit


EVENT_TYPES = [t for topic in CATALOGUE for t in topic.types]
EXPORT_MAX = 5000  # records in one export of a search (the audit API's own export has all)
COLUMNS = ("sequence", "time", "type", "outcome", "agency", "actor", "subject", "action")
Text = Annotated[str, Query(max_length=100)]


def _when(value: str) -> str:
    """A `datetime-local` value as UTC, as the audit API takes it."""
    return value if not value or value.endswith("Z") or "+" in value else value + ":00Z"


def _search_params(filters: dict[str, str]) -> list[tuple[str, str]]:
    names = {"agency": "agency", "actor": "actor", "type": "type", "referral": "referral"}
    params = [(api_name, filters[key].strip()) for key, api_name in names.items() if filters[key]]
    for key, api_name in (("since", "since"), ("until", "until")):
        if filters[key]:
            params.append((api_name, _when(filters[key])))
    if filters["reference"]:
        params.append(("reference", filters["reference"].strip()))
    return params


def _row(e: dict[str, Any]) -> dict[str, Any]:
    """An audit record as the search shows and exports it (the envelope; the payload's action
    only: the bus carries no identity, and the page shows no more than it needs)."""
    payload = e.get("payload") or {}
    return {
        "sequence": e.get("sequence"),
        "time": e.get("time"),
        "type": e.get("type"),
        "outcome": e.get("outcome") or "",
        "agency": e.get("agency") or payload.get("agency") or "",
        "actor": e.get("client_id") or e.get("source") or "",
        "subject": e.get("subject") or "",
        "action": payload.get("action") or "",
    }


async def _search(
    request: Request, api: Backend, params: list[tuple[str, str]], cursor: str, limit: int
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """One page of the audit search: rows, the next cursor, and the API's refusal if any."""
    query = [*params, ("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
    r = await api.call(request.session, "GET", "/v1/audit/events", params=query)
    if r.status_code != 200:
        return [], None, refusal(r)
    page = r.json()
    return [_row(e) for e in page["items"]], page.get("next_cursor"), None


@router.get("/audit", include_in_schema=False)
async def audit(
    request: Request,
    user: Person,
    api: API,
    reference: Annotated[str, Query(max_length=40)] = "",
    agency: Text = "",
    actor: Text = "",
    type: Text = "",
    since: Annotated[str, Query(max_length=30)] = "",
    until: Annotated[str, Query(max_length=30)] = "",
    cursor: Annotated[str, Query(max_length=CURSOR_MAX_LENGTH)] = "",
) -> Response:
    """A reference alone opens the referral's timeline; any other filter lists the events."""
    needs(user, "auditor")
    filters = {
        "reference": reference,
        "agency": agency,
        "actor": actor,
        "type": type,
        "since": since,
        "until": until,
        "referral": "",
    }
    found: str | None = None
    missing = False
    searched = any(filters[k] for k in ("agency", "actor", "type", "since", "until"))
    if reference and not searched:
        r = await api.call(
            request.session,
            "GET",
            "/v1/audit/events",
            params=[("reference", reference.strip()), ("limit", "1")],
        )
        items = r.json().get("items", []) if r.status_code == 200 else []
        if items:
            found = items[0]["subject"]
            return RedirectResponse(
                f"/console/audit/referrals/{found}?{urlencode({'reference': reference})}",
                status_code=303,
            )
        missing = True
    results = None
    next_cursor = problem = None
    if searched:
        results, next_cursor, problem = await _search(
            request, api, _search_params(filters), cursor, 100
        )
    query = urlencode({k: v for k, v in filters.items() if v})
    return pages.render(
        request,
        "audit.html.j2",
        reference=reference,
        missing=missing,
        filters=filters,
        types=EVENT_TYPES,
        results=results,
        next_cursor=next_cursor,
        problem=problem,
        query=query,
    )


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _download(data: Any, columns: tuple[str, ...], name: str, fmt: str) -> Response:
    """JSON as it is, or CSV of `data`'s rows (a list of dicts) with `columns`."""
    if fmt == "json":
        body = json.dumps(data, ensure_ascii=False, indent=1).encode()
        media = "application/json"
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in data:
            writer.writerow(
                {
                    k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v)
                    for k, v in row.items()
                }
            )
        body = out.getvalue().encode()
        media = "text/csv; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/audit/export.{fmt}", include_in_schema=False)
async def audit_export(
    request: Request,
    fmt: str,
    user: Person,
    api: API,
    reference: Annotated[str, Query(max_length=40)] = "",
    agency: Text = "",
    actor: Text = "",
    type: Text = "",
    since: Annotated[str, Query(max_length=30)] = "",
    until: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    """The search's every result (up to EXPORT_MAX), as JSON or CSV."""
    needs(user, "auditor")
    if fmt not in ("json", "csv"):
        raise NotFound
    filters = {
        "reference": reference,
        "agency": agency,
        "actor": actor,
        "type": type,
        "since": since,
        "until": until,
        "referral": "",
    }
    params = _search_params(filters)
    rows: list[dict[str, Any]] = []
    cursor: str | None = ""
    while cursor is not None and len(rows) < EXPORT_MAX:
        page, cursor, problem = await _search(request, api, params, cursor, 500)
        if problem:
            raise NotFound
        rows += page
    return _download(rows[:EXPORT_MAX], COLUMNS, "nrm-audit-search", fmt)


async def _timeline_and_access(
    request: Request, api: Backend, referral_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    r = await api.call(request.session, "GET", f"/v1/audit/referrals/{referral_id[:64]}/timeline")
    if r.status_code != 200:
        raise NotFound
    timeline: dict[str, Any] = r.json()
    # Who read what: every access to the referral, allowed or denied, in the timeline already.
    access = [e for e in timeline["events"] if e["type"] in ("access.granted", "access.denied")]
    return timeline, access


@router.get("/audit/referrals/{referral_id}", include_in_schema=False)
async def audit_timeline(
    request: Request,
    referral_id: str,
    user: Person,
    api: API,
    reference: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    needs(user, "auditor")
    timeline, access = await _timeline_and_access(request, api, referral_id)
    return pages.render(
        request, "timeline.html.j2", timeline=timeline, access=access, reference=reference
    )


TIMELINE_COLUMNS = (
    "sequence",
    "time",
    "type",
    "outcome",
    "agency",
    "actor",
    "action",
    "disclosure",
    "rule",
    "since_start_ms",
)


@router.get("/audit/referrals/{referral_id}/timeline.{fmt}", include_in_schema=False)
async def audit_timeline_export(
    request: Request, referral_id: str, fmt: str, user: Person, api: API
) -> Response:
    needs(user, "auditor")
    if fmt not in ("json", "csv"):
        raise NotFound
    timeline, _ = await _timeline_and_access(request, api, referral_id)
    data = timeline if fmt == "json" else timeline["events"]
    return _download(data, TIMELINE_COLUMNS, f"nrm-timeline-{referral_id[:64]}", fmt)


@router.post("/audit/verify", include_in_schema=False, dependencies=[Csrf])
async def audit_verify(request: Request, user: Person, api: API) -> Response:
    needs(user, "auditor")
    r = await api.call(request.session, "GET", "/v1/audit/verify")
    result = r.json() if r.status_code == 200 else {"ok": False, "records": 0}
    return pages.render(
        request,
        "audit.html.j2",
        reference="",
        missing=False,
        verify=result,
        filters=dict.fromkeys(("agency", "actor", "type", "since", "until"), ""),
        types=EVENT_TYPES,
        results=None,
    )
