"""The new-referral form: form fields named by the contract's own paths (`victim/age`), so the
API's 422 field paths land on the field they name. Validation is the API's: the console only
shapes the form into the contract's JSON."""

from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData

from contracts.vocabulary import (
    AgeBasis,
    ConsentForm,
    ConsentGivenBy,
    Exploitation,
    Need,
    RiskLevel,
    SafeChannel,
    Sex,
    TipSource,
    Urgency,
)

VOCAB: dict[str, list[str]] = {
    "urgency": [u.value for u in Urgency],
    "exploitation": [e.value for e in Exploitation],
    "needs": [n.value for n in Need],
    "sex": [s.value for s in Sex],
    "given_by": [g.value for g in ConsentGivenBy],
    "age_basis": [a.value for a in AgeBasis],
    "source": [s.value for s in TipSource],
    "safe_channels": [c.value for c in SafeChannel],
    "risk_level": [r.value for r in RiskLevel],
    "consent_form": [f.value for f in ConsentForm],
}
MULTI = ("exploitation", "victim/needs", "victim/safety/safe_channels")
CHECKS = (
    "official_involvement",
    "victim/contact/safe_to_contact",
    "victim/appears_minor",
    "victim/safety/do_not_contact",
    "victim/safety/trafficker_nearby",
    "victim/safety/family_involved",
    "consent/services",
    "consent/law_enforcement",
    "consent/statistics",
)
LISTS = (
    "destination_countries",
    "victim/languages",
    "implicated",
    "victim/contact/address_shared_with",
)
YES_NO = ("consent/interpreter",)  # a choice of "", "yes", "no": unanswered is left out
TIMES = ("consent/recorded_at", "victim/safety/assessed_at")  # datetime-local, taken as UTC
# Which fields make a part of the victim worth sending (a form left blank sends none of it).
PARTS = {
    "victim/contact": (
        "victim/contact/phone",
        "victim/contact/email",
        "victim/contact/address",
    ),
    "victim/safety": (
        "victim/safety/do_not_contact",
        "victim/safety/safe_channels",
        "victim/safety/safe_times",
        "victim/safety/trafficker_nearby",
        "victim/safety/family_involved",
        "victim/safety/risk_level",
        "victim/safety/assessed_by",
        "victim/safety/assessed_at",
    ),
}
# The groups a model-level error can name (`consent`: a guardian's consent without the
# appointment): shown on the group's fieldset.
GROUPS = ("victim", "victim/identity", "victim/contact", "victim/safety", "consent")


def defaults(kind: str = "victim_referral") -> dict[str, Any]:
    if kind == "tip":
        return {"urgency": "high", "source": "hotline", "exploitation": []}
    return {
        "urgency": "routine",
        "victim/sex": "unknown",
        "consent/given_by": "self",
        "consent/recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M"),
        "exploitation": [],
        "victim/needs": [],
        "victim/safety/safe_channels": [],
    }


def values_of(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in form:
        if key in ("csrf", "idempotency_key"):  # the form's own, not the referral's
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
        elif key in TIMES:
            _put(body, key, _utc(value))
        elif key in YES_NO:
            _put(body, key, value == "yes")
        else:
            _put(body, key, value)
    for key in CHECKS:
        if kind == "tip" and key != "official_involvement":
            continue
        _put(body, key, values.get(key) == "on")
    if kind != "tip":
        for part, fields in PARTS.items():
            if not any(values.get(f) for f in fields):
                body.get("victim", {}).pop(part.split("/")[1], None)
    identity = body.get("victim", {}).get("identity")
    if identity is not None and not identity:
        body["victim"].pop("identity")
    return body, errors


def _utc(value: str) -> str:
    """A `datetime-local` value (`2026-11-20T10:00`) as UTC; one with a zone as it is."""
    if value.endswith("Z") or "+" in value:
        return value
    return value + (":00Z" if value.count(":") == 1 else "Z")


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
