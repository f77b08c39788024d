"""The new-referral form: form fields named by the contract's own paths (`victim/age`), so the
API's 422 field paths land on the field they name. Validation is the API's: the console only
shapes the form into the contract's JSON."""

from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData

from contracts.vocabulary import (
    AgeBasis,
    ConsentGivenBy,
    Exploitation,
    Need,
    Sex,
    TipSource,
    Urgency,
    VictimStatus,
)

VOCAB: dict[str, list[str]] = {
    "urgency": [u.value for u in Urgency],
    "exploitation": [e.value for e in Exploitation],
    "needs": [n.value for n in Need],
    "sex": [s.value for s in Sex],
    "status": [s.value for s in VictimStatus],
    "given_by": [g.value for g in ConsentGivenBy],
    "age_basis": [a.value for a in AgeBasis],
    "source": [s.value for s in TipSource],
}
MULTI = ("exploitation", "victim/needs")
CHECKS = (
    "official_involvement",
    "victim/contact/safe_to_contact",
    "victim/appears_minor",
    "consent/services",
    "consent/law_enforcement",
    "consent/statistics",
)
LISTS = ("destination_countries", "victim/languages", "implicated")


def defaults(kind: str = "victim_referral") -> dict[str, Any]:
    if kind == "tip":
        return {"urgency": "high", "source": "hotline", "exploitation": []}
    return {
        "urgency": "routine",
        "victim/status": "potential",
        "victim/sex": "unknown",
        "consent/given_by": "self",
        "consent/recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"),
        "exploitation": [],
        "victim/needs": [],
    }


def values_of(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in form:
        if key == "csrf":
            continue
        if key in MULTI:
            values[key] = [str(v) for v in form.getlist(key)]
        else:
            values[key] = str(form.get(key, "")).strip()
    for key in MULTI:
        values.setdefault(key, [])
    return values


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split("/")
    for p in parents:
        body = body.setdefault(p, {})
    body[last] = value


def referral_body(
    values: dict[str, Any], kind: str = "victim_referral"
) -> tuple[dict[str, Any], dict[str, str]]:
    """The contract's JSON from the form; errors only for what cannot be shaped (a number).
    A tip has no victim and no consent: such fields, if sent, are left out."""
    body: dict[str, Any] = {"kind": kind}
    errors: dict[str, str] = {}
    if kind == "tip":
        values = {k: v for k, v in values.items() if not k.startswith(("victim/", "consent/"))}
    for key, value in values.items():
        if key in CHECKS:
            continue
        if key in MULTI:
            _put(body, key, value)
        elif key in LISTS:
            if value:
                _put(body, key, [v.strip() for v in value.split(",") if v.strip()])
        elif value == "":
            continue
        elif key == "victim/age":
            if not value.isdigit():
                errors[key] = "Enter a whole number."
            else:
                _put(body, key, int(value))
        elif key == "consent/recorded_at":
            _put(body, key, value if value.endswith("Z") or "+" in value else value + ":00Z")
        else:
            _put(body, key, value)
    for key in CHECKS:
        if kind == "tip" and key != "official_involvement":
            continue
        _put(body, key, values.get(key) == "on")
    if kind != "tip" and not values.get("victim/contact/phone"):
        body.get("victim", {}).pop("contact", None)
    identity = body.get("victim", {}).get("identity")
    if identity is not None and not identity:
        body["victim"].pop("identity")
    return body, errors


def errors_of(problem: dict[str, Any]) -> dict[str, str]:
    """The API's 422 field paths (`victim/age`) to messages; what names no field of the form
    goes to the top of the page under the empty key."""
    out: dict[str, str] = {}
    for err in problem.get("errors", []):
        path = str(err.get("path", ""))
        # A list item's error (`victim/languages/1`) belongs to the list's field.
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] in ("victim_referral", "tip"):  # the union's tag leads the path
            parts = parts[1:]
        while parts and parts[-1].isdigit():
            parts.pop()
        out.setdefault("/".join(parts), str(err.get("message", "")))
    return out
