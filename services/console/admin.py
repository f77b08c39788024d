"""The administration pages (role `admin`; people also for supervisors, their own agency's):
agencies, clients, people, webhooks and e-mail addresses, the routing policy and "explain".
Thin like api.py: each calls identity's, notify's or router's admin API as the person, and
their refusals (problem+json) are shown on the page. Secrets and generated passwords are
shown once, on the page after the action, and forgotten."""

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from contracts.vocabulary import AgencyType, Role
from services.console import forms, pages
from services.console.api import API, Csrf, NotFound, Person, needs, refusal
from services.console.service import Backend

router = APIRouter(prefix="/console/admin")

ROLES = [r.value for r in Role]
AGENCY_TYPES = [a.value for a in AgencyType]
SWITCHES = ("disable", "enable")
# The routing facts "explain" asks for: a draft referral without identity or narrative.
EXPLAIN_FIELDS = (
    "kind",
    "region",
    "urgency",
    "exploitation",
    "official_involvement",
    "implicated",
    "destination_countries",
    "victim/age",
    "victim/appears_minor",
    "victim/needs",
    "victim/safety/risk_level",
    "consent/services",
    "consent/law_enforcement",
    "consent/statistics",
)


def _flash(request: Request, r: httpx.Response, done: str) -> None:
    request.session["flash"] = (
        {"ok": True, "text": done} if r.status_code < 400 else {"ok": False, "text": refusal(r)}
    )


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


async def _items(request: Request, api: Backend, path: str) -> list[dict[str, Any]]:
    r = await api.call(request.session, "GET", path)
    if r.status_code != 200:
        return []
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _render(request: Request, template: str, **context: Any) -> Response:
    return pages.render(
        request, template, flash=request.session.pop("flash", None), roles=ROLES, **context
    )


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
async def admin_home(user: Person) -> Response:
    needs(user, "admin")
    return RedirectResponse("/console/admin/agencies", status_code=303)


# Agencies


@router.get("/agencies", include_in_schema=False)
async def agencies(request: Request, user: Person, api: API) -> Response:
    needs(user, "admin")
    items = await _items(request, api, "/v1/admin/agencies")
    return _render(request, "admin_agencies.html.j2", items=items, types=AGENCY_TYPES)


@router.post("/agencies", include_in_schema=False, dependencies=[Csrf])
async def create_agency(
    request: Request,
    user: Person,
    api: API,
    id: Annotated[str, Form(max_length=63)],
    name: Annotated[str, Form(max_length=200)],
    type: Annotated[str, Form(max_length=40)],
    regions: Annotated[str, Form(max_length=2000)] = "",
    language: Annotated[str, Form(max_length=20)] = "en",
) -> Response:
    needs(user, "admin")
    body = {
        "id": id.strip(),
        "name": name.strip(),
        "type": type,
        "regions": _split(regions),
        "language": language.strip() or "en",
    }
    r = await api.call(request.session, "POST", "/v1/admin/agencies", json_body=body)
    _flash(request, r, f"{body['id']}: created")
    return RedirectResponse("/console/admin/agencies", status_code=303)


@router.post("/agencies/{agency_id}/{switch}", include_in_schema=False, dependencies=[Csrf])
async def switch_agency(
    request: Request, agency_id: str, switch: str, user: Person, api: API
) -> Response:
    needs(user, "admin")
    if switch not in SWITCHES:
        raise NotFound
    r = await api.call(request.session, "POST", f"/v1/admin/agencies/{agency_id[:63]}/{switch}")
    _flash(request, r, f"{agency_id}: {switch}d")
    return RedirectResponse("/console/admin/agencies", status_code=303)


# Clients


@router.get("/clients", include_in_schema=False)
async def clients(request: Request, user: Person, api: API) -> Response:
    needs(user, "admin")
    items = await _items(request, api, "/v1/admin/clients")
    return _render(request, "admin_clients.html.j2", items=items)


@router.post("/clients", include_in_schema=False, dependencies=[Csrf])
async def create_client(
    request: Request,
    user: Person,
    api: API,
    client_id: Annotated[str, Form(max_length=100)],
    agency: Annotated[str, Form(max_length=63)],
    redirect_uris: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    needs(user, "admin")
    form = await request.form()
    body = {
        "client_id": client_id.strip(),
        "agency": agency.strip(),
        "roles": [str(r) for r in form.getlist("roles")],
        "redirect_uris": _split(redirect_uris),
    }
    r = await api.call(request.session, "POST", "/v1/admin/clients", json_body=body)
    secret = r.json().get("client_secret") if r.status_code == 201 else None
    _flash(request, r, f"{body['client_id']}: created, secret (shown once): {secret}")
    return RedirectResponse("/console/admin/clients", status_code=303)


@router.post("/clients/{client_id}/{action}", include_in_schema=False, dependencies=[Csrf])
async def client_action(
    request: Request, client_id: str, action: str, user: Person, api: API
) -> Response:
    needs(user, "admin")
    if action not in (*SWITCHES, "rotate"):
        raise NotFound
    r = await api.call(request.session, "POST", f"/v1/admin/clients/{client_id[:100]}/{action}")
    if action == "rotate":
        secret = r.json().get("client_secret") if r.status_code == 200 else None
        _flash(request, r, f"{client_id}: new secret (shown once): {secret}")
    else:
        _flash(request, r, f"{client_id}: {action}d")
    return RedirectResponse("/console/admin/clients", status_code=303)


# People (admins: everyone; supervisors: their own agency's, as identity decides)


@router.get("/people", include_in_schema=False)
async def people(request: Request, user: Person, api: API) -> Response:
    needs(user, "admin", "supervisor")
    items = await _items(request, api, "/v1/admin/people")
    return _render(request, "admin_people.html.j2", items=items)


@router.post("/people", include_in_schema=False, dependencies=[Csrf])
async def create_person(
    request: Request,
    user: Person,
    api: API,
    username: Annotated[str, Form(max_length=100)],
    agency: Annotated[str, Form(max_length=63)] = "",
) -> Response:
    needs(user, "admin", "supervisor")
    form = await request.form()
    body = {
        "username": username.strip(),
        "agency": agency.strip() or user["agency"],
        "roles": [str(r) for r in form.getlist("roles")],
    }
    r = await api.call(request.session, "POST", "/v1/admin/people", json_body=body)
    password = r.json().get("password") if r.status_code == 201 else None
    _flash(request, r, f"{body['username']}: created, password (shown once): {password}")
    return RedirectResponse("/console/admin/people", status_code=303)


@router.post("/people/{person_id}/{action}", include_in_schema=False, dependencies=[Csrf])
async def person_action(
    request: Request,
    person_id: str,
    action: str,
    user: Person,
    api: API,
    username: Annotated[str, Form(max_length=100)] = "",
    new_password: Annotated[bool, Form()] = False,
    second_factor: Annotated[bool, Form()] = False,
) -> Response:
    needs(user, "admin", "supervisor")
    path = f"/v1/admin/people/{person_id[:64]}/{action}"
    if action in SWITCHES:
        r = await api.call(request.session, "POST", path)
        _flash(request, r, f"{username}: {action}d")
    elif action == "reset":
        body = {"new_password": new_password, "second_factor": second_factor}
        r = await api.call(request.session, "POST", path, json_body=body)
        password = r.json().get("password") if r.status_code == 200 else None
        done = [f"{username}: reset"]
        if password:
            done.append(f"new password (shown once): {password}")
        if second_factor:
            done.append("second factor enrolled again at next sign-in")
        _flash(request, r, ", ".join(done))
    else:
        raise NotFound
    return RedirectResponse("/console/admin/people", status_code=303)


# Agencies' channels: webhooks and e-mail addresses (notify)


@router.get("/channels", include_in_schema=False)
async def channels(request: Request, user: Person, api: API) -> Response:
    needs(user, "admin")
    rows = []
    for agency in await _items(request, api, "/v1/admin/agencies"):
        hook = await api.call(request.session, "GET", f"/v1/agencies/{agency['id']}/webhook")
        mail = await api.call(request.session, "GET", f"/v1/agencies/{agency['id']}/email")
        rows.append(
            {
                "agency": agency["id"],
                "webhook": hook.json() if hook.status_code == 200 else None,
                "email": mail.json() if mail.status_code == 200 else None,
            }
        )
    return _render(request, "admin_channels.html.j2", rows=rows)


@router.post("/channels/{agency}/webhook", include_in_schema=False, dependencies=[Csrf])
async def set_webhook(
    request: Request,
    agency: str,
    user: Person,
    api: API,
    url: Annotated[str, Form(max_length=2000)],
    enabled: Annotated[bool, Form()] = False,
) -> Response:
    needs(user, "admin")
    body = {"url": url.strip(), "enabled": enabled}
    r = await api.call(
        request.session, "PUT", f"/v1/agencies/{agency[:63]}/webhook", json_body=body
    )
    secret = r.json().get("secret") if r.status_code == 200 else None
    _flash(request, r, f"{agency}: webhook set, signing secret (shown once): {secret}")
    return RedirectResponse("/console/admin/channels", status_code=303)


@router.post("/channels/{agency}/email", include_in_schema=False, dependencies=[Csrf])
async def set_email(
    request: Request,
    agency: str,
    user: Person,
    api: API,
    addresses: Annotated[str, Form(max_length=6000)] = "",
    language: Annotated[str, Form(max_length=20)] = "en",
) -> Response:
    needs(user, "admin")
    body = {"addresses": _split(addresses), "language": language}
    r = await api.call(request.session, "PUT", f"/v1/agencies/{agency[:63]}/email", json_body=body)
    _flash(request, r, f"{agency}: e-mail addresses set")
    return RedirectResponse("/console/admin/channels", status_code=303)


# The routing policy (read-only) and "explain"


def conditions(when: dict[str, Any]) -> str:
    """A rule's `when` as one line (`exploitation: labour; minor: true`); empty: always."""
    parts = []
    for key, value in when.items():
        if value is None:
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value).lower()
        parts.append(f"{key}: {shown}")
    return "; ".join(parts)


def targets(to: list[dict[str, Any]] | dict[str, Any]) -> str:
    items = to if isinstance(to, list) else [to]
    out = []
    for t in items:
        if t.get("agency"):
            out.append(str(t["agency"]))
        elif t.get("type"):
            fallback = f" (else {t['fallback']})" if t.get("fallback") else ""
            out.append(f"{t['type']} covering the region{fallback}")
    return ", ".join(out)


@router.get("/policy", include_in_schema=False)
async def policy(request: Request, user: Person, api: API) -> Response:
    needs(user, "admin", "auditor")
    r = await api.call(request.session, "GET", "/v1/routing/policy")
    if r.status_code != 200:
        raise NotFound
    described = r.json()
    rules = [
        {**rule, "conditions": conditions(rule.get("when") or {}), "targets": targets(rule["to"])}
        for rule in described.get("rules", [])
    ]
    cases = {
        name: [{**c, "conditions": conditions(c.get("when") or {})} for c in listed]
        for name, listed in (described.get("disclosure") or {}).items()
    }
    return _render(request, "admin_policy.html.j2", policy=described, rules=rules, cases=cases)


def explain_defaults() -> dict[str, Any]:
    return {
        "kind": "victim_referral",
        "urgency": "routine",
        "exploitation": [],
        "victim/needs": [],
    }


@router.get("/explain", include_in_schema=False)
async def explain_form(request: Request, user: Person) -> Response:
    needs(user, "admin", "referrer", "auditor")
    return _render(
        request,
        "admin_explain.html.j2",
        values=explain_defaults(),
        vocab=forms.VOCAB,
        result=None,
        errors={},
    )


@router.post("/explain", include_in_schema=False, dependencies=[Csrf])
async def explain(request: Request, user: Person, api: API) -> Response:
    needs(user, "admin", "referrer", "auditor")
    form = await request.form()
    values = {k: v for k, v in forms.values_of(form).items() if k in (*EXPLAIN_FIELDS, "as")}
    kind = "tip" if values.get("kind") == "tip" else "victim_referral"
    draft = {k: v for k, v in values.items() if k not in ("kind", "as")}
    if kind == "victim_referral":
        # Consent's who and when do not change routing: a draft is explained as recorded now.
        draft |= {"consent/given_by": "self", "consent/recorded_at": "2026-01-01T00:00"}
    body, errors = forms.referral_body(draft, kind)
    params = [("submitted_by", str(values["as"]))] if values.get("as") else None
    result = None
    if not errors:
        r = await api.call(
            request.session, "POST", "/v1/routing/explain", params=params, json_body=body
        )
        if r.status_code == 200:
            result = r.json()
        elif r.status_code == 422:
            errors = forms.errors_of(r.json())
        else:
            errors = {"": refusal(r)}
    return _render(
        request,
        "admin_explain.html.j2",
        status=422 if errors else 200,
        values={**explain_defaults(), **values},
        vocab=forms.VOCAB,
        result=result,
        errors=errors,
    )
