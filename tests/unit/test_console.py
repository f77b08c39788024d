"""The console's pieces without a browser: the idle timeout of its sessions, and the API's 422
field paths landing on the form's fields."""

from typing import Any

from pydantic import TypeAdapter

from contracts.referrals import ReferralIn
from services.console.forms import errors_of, referral_body
from services.console.service import SessionStore


def test_a_session_unused_past_the_idle_timeout_is_forgotten() -> None:
    now = [1000.0]
    store = SessionStore(idle_seconds=900, clock=lambda: now[0])
    sid = store.save(None, {"user": {"username": "gp.caseworker"}})
    now[0] += 899
    assert store.load(sid) == {"user": {"username": "gp.caseworker"}}  # and renewed
    now[0] += 899
    assert store.load(sid) is not None
    now[0] += 901
    assert store.load(sid) is None
    assert store.load(sid) is None  # gone for good, not revived
    assert store.load("guessed") is None


def test_the_apis_field_paths_name_the_forms_fields() -> None:
    problem = {
        "status": 422,
        "errors": [
            {"path": "victim_referral/region", "message": "Field required"},
            {"path": "victim_referral/victim/languages/1", "message": "Not a language tag"},
            {"path": "victim_referral/victim/languages/2", "message": "Not a language tag"},
            {"path": "/", "message": "Something else"},
        ],
    }
    assert errors_of(problem) == {
        "region": "Field required",
        "victim/languages": "Not a language tag",
        "": "Something else",
    }


def test_the_form_becomes_the_contracts_json() -> None:
    body, errors = referral_body(
        {
            "region": "KZ-79",
            "urgency": "routine",
            "exploitation": ["labour"],
            "destination_countries": "AE, TR",
            "victim/age": "31",
            "victim/needs": ["shelter"],
            "victim/languages": "uz,ru",
            "victim/identity/full_name": "Bakhtiyor Example",
            "victim/contact/phone": "",
            "consent/services": "on",
            "consent/given_by": "self",
            "consent/recorded_at": "2026-11-29T07:00",
            "narrative": "",
        }
    )
    assert errors == {}
    assert body == {
        "kind": "victim_referral",
        "region": "KZ-79",
        "urgency": "routine",
        "exploitation": ["labour"],
        "destination_countries": ["AE", "TR"],
        "official_involvement": False,
        "victim": {
            "age": 31,
            "needs": ["shelter"],
            "languages": ["uz", "ru"],
            "identity": {"full_name": "Bakhtiyor Example"},
            "appears_minor": False,
        },
        "consent": {
            "services": True,
            "law_enforcement": False,
            "statistics": False,
            "given_by": "self",
            "recorded_at": "2026-11-29T07:00:00Z",
        },
    }
    assert referral_body({"victim/age": "thirty"})[1] == {"victim/age": "Enter a whole number."}


def test_a_tip_has_no_victim_or_consent() -> None:
    body, errors = referral_body(
        {
            "region": "KZ-39",
            "urgency": "high",
            "exploitation": ["sexual"],
            "source": "hotline",
            "official_involvement": "on",
            "victim/age": "12",
            "consent/services": "on",
            "narrative": "Caller reports a brothel protected by officials.",
        },
        "tip",
    )
    assert errors == {}
    assert body == {
        "kind": "tip",
        "region": "KZ-39",
        "urgency": "high",
        "exploitation": ["sexual"],
        "source": "hotline",
        "official_involvement": True,
        "narrative": "Caller reports a brothel protected by officials.",
    }


def test_the_referral_page_shows_the_clocks_and_the_authoritys_decision_form() -> None:
    """Everyone who may read the referral sees its identification clocks; only a supervisor of
    the competent authority gets the decision form, with the steps the status allows."""
    from services.console.api import identification_form
    from services.console.pages import TEXT, _env

    shown = {
        "id": "r1",
        "reference": "NRM-2026-000001",
        "disclosure": "full",
        "identification": {
            "status": "reasonable_grounds",
            "authority": "mvd-ctu",
            "reasonable_grounds_due": "2026-12-03T12:00:00+00:00",
            "reflection_ends": "2027-01-02T12:00:00+00:00",
            "decided_at": "2026-12-03T12:00:00+00:00",
            "basis": "interview",
            "overdue": False,
        },
        "investigation": {"opened": True, "date": "2026-12-01", "agency": "mvd-ctu"},
    }

    def page(username: str, agency: str, roles: list[str]) -> str:
        user = {"username": username, "agency": agency, "roles": roles}
        return _env.get_template("referral_identification.html.j2").render(
            lang="en",
            t=TEXT["en"],
            user=user,
            csrf="x",
            r=shown,
            **identification_form(user, shown),
        )

    authority = page("mvd-ctu.supervisor", "mvd-ctu", ["supervisor"])
    assert 'id="reflection-ends">2027-01-02T12:00:00+00:00<' in authority
    assert '<option value="confirmed">Confirmed victim</option>' in authority
    assert '<option value="not_confirmed">Not confirmed</option>' in authority
    assert 'reasonable_grounds">' not in authority  # not a step from here
    assert ">Record decision</button>" in authority
    assert "Investigation number" not in authority  # no number in this (support) view
    for who, agency, roles in (
        ("mvd-ctu.caseworker", "mvd-ctu", ["caseworker"]),
        ("ngo-south.supervisor", "ngo-south", ["supervisor"]),
    ):
        other = page(who, agency, roles)
        assert 'id="reflection-ends">2027-01-02T12:00:00+00:00<' in other
        assert "Record decision" not in other


def test_safety_contact_and_consent_fields_make_a_body_the_contract_accepts() -> None:
    body, errors = referral_body(
        {
            "region": "KZ-39",
            "urgency": "high",
            "exploitation": ["labour"],
            "implicated": "gp",
            "victim/age": "",
            "victim/age_basis": "unknown",
            "victim/appears_minor": "on",
            "victim/needs": [],
            "victim/contact/email": "victim@example.org",
            "victim/contact/address": "Kostanay, a safe flat",
            "victim/contact/address_shared_with": "ngo-north",
            "victim/contact/safe_to_contact": "on",
            "victim/safety/do_not_contact": "",
            "victim/safety/safe_channels": ["sms", "through_agency"],
            "victim/safety/safe_times": "weekdays 10:00-12:00",
            "victim/safety/family_involved": "on",
            "victim/safety/risk_level": "medium",
            "victim/safety/assessed_by": "ngo-north caseworker",
            "victim/safety/assessed_at": "2026-11-29T08:30",
            "consent/services": "on",
            "consent/given_by": "guardian",
            "consent/guardian_appointment": "Kostanay akimat order 17 of 2026-11-01",
            "consent/recorded_at": "2026-11-29T09:00",
            "consent/language": "ru",
            "consent/interpreter": "no",
            "consent/form": "written",
        }
    )
    assert errors == {}
    assert body["implicated"] == ["gp"]
    assert body["victim"] == {
        "age_basis": "unknown",
        "appears_minor": True,
        "needs": [],
        "contact": {
            "email": "victim@example.org",
            "address": "Kostanay, a safe flat",
            "address_shared_with": ["ngo-north"],
            "safe_to_contact": True,
        },
        "safety": {
            "safe_channels": ["sms", "through_agency"],
            "safe_times": "weekdays 10:00-12:00",
            "risk_level": "medium",
            "assessed_by": "ngo-north caseworker",
            "assessed_at": "2026-11-29T08:30:00Z",
            "do_not_contact": False,
            "trafficker_nearby": False,
            "family_involved": True,
        },
    }
    assert body["consent"] == {
        "services": True,
        "law_enforcement": False,
        "statistics": False,
        "given_by": "guardian",
        "guardian_appointment": "Kostanay akimat order 17 of 2026-11-01",
        "recorded_at": "2026-11-29T09:00:00Z",
        "language": "ru",
        "interpreter": False,
        "form": "written",
    }
    referral = TypeAdapter(ReferralIn).validate_python(body)
    assert referral.victim.minor  # type: ignore[union-attr]  # presumed: age unknown


def test_a_blank_safety_part_sends_no_safety() -> None:
    body, _ = referral_body(
        {
            "region": "KZ-39",
            "exploitation": ["labour"],
            "victim/safety/safe_channels": [],
            "victim/safety/risk_level": "",
            "consent/given_by": "self",
            "consent/recorded_at": "2026-11-29T09:00",
            "consent/interpreter": "",
        }
    )
    assert "safety" not in body["victim"] and "contact" not in body["victim"]
    assert "interpreter" not in body["consent"]


def test_the_statistics_page_draws_published_cells_and_says_suppressed_for_the_others() -> None:
    """Charts as inline SVG with attributes only (no style attribute, no script: the CSP), each
    with its table; a withheld cell has no bar and reads "suppressed", never 0."""
    import re

    from services.console import charts
    from services.console.pages import STATISTICS_TEXT, TEXT, _env

    regions = {
        "k": 11,
        "cells": [
            {"region": "KZ-11", "value": None, "suppressed": True},
            {"region": "KZ-39", "value": None, "suppressed": True},
            {"region": "KZ-79", "value": 15, "suppressed": False},
        ],
        "total": {"value": 29, "suppressed": False},
    }
    funnel = {
        "cells": [
            {"stage": "submitted", "value": 30, "suppressed": False},
            {"stage": "acknowledged_in_time", "value": 15, "suppressed": False},
            {"stage": "accepted", "value": None, "suppressed": True},
        ],
        "total": {"value": 30, "suppressed": False},
    }
    times = {
        "cells": [
            {"agency": "gp", "value": None, "p90": None, "n": None, "suppressed": True},
            {"agency": "ngo-south", "value": 1.0, "p90": 30.0, "n": 12, "suppressed": False},
        ],
        "total": {"value": 2.0, "p90": 30.0, "n": 20, "suppressed": False},
    }
    monthly = {
        "cells": [
            {"month": "2026-01", "exploitation": "sexual", "value": 20, "suppressed": False},
            {"month": "2026-01", "exploitation": "labour", "value": 12, "suppressed": False},
            {"month": "2026-02", "exploitation": "sexual", "value": None, "suppressed": True},
            {"month": "2026-02", "exploitation": "labour", "value": 16, "suppressed": False},
        ]
    }
    stacked = charts.stacked_chart(monthly, "month", "exploitation")
    drawn: dict[str, Any] = {
        "monthly": stacked,
        "funnel": charts.bar_chart(funnel, "stage"),
        "regions": charts.bar_chart(regions, "region"),
        "acknowledge": charts.bar_chart(times, "agency"),
    }
    assert [b.width for b in drawn["regions"].bars] == [0.0, 0.0, 360.0]
    assert [b.width for b in drawn["funnel"].bars] == [360.0, 180.0, 0.0]
    assert [(b.width, b.p90_x) for b in drawn["acknowledge"].bars] == [(0.0, None), (12.0, 360.0)]
    assert [[(s.category, s.x, s.width) for s in r.segments] for r in stacked.rows] == [
        [("sexual", 0.0, 225.0), ("labour", 225.0, 135.0)],
        [("labour", 0.0, 180.0)],
    ]
    user = {"username": "analyst", "agency": "analyst", "roles": ["analyst"]}
    html = _env.get_template("statistics.html.j2").render(
        lang="en",
        t=TEXT["en"],
        user=user,
        csrf="x",
        path="/console/statistics",
        languages=("en",),
        charts=drawn,
        errors={"identify": "Not available."},
        year=2026,
        years=[2026],
        k=11,
        plot=charts.PLOT,
    )
    assert " style=" not in html and "<script" not in html  # SVG attributes are not style
    assert '<tr data-key="KZ-79"><th scope="row">KZ-79</th><td>15</td></tr>' in html
    assert '<tr data-key="KZ-11"><th scope="row">KZ-11</th><td>suppressed</td></tr>' in html
    assert '<tr data-key="accepted"><th scope="row">Accepted</th><td>suppressed</td></tr>' in html
    assert '<td data-key="sexual">suppressed</td>' in html
    assert "<td>1.0</td><td>30.0</td><td>12</td>" in html
    assert re.search(r'<a href="/console/statistics">Statistics</a>', html)
    for lang, text in STATISTICS_TEXT.items():
        assert text.keys() == STATISTICS_TEXT["en"].keys()
        html = _env.get_template("statistics.html.j2").render(
            lang=lang,
            t=TEXT[lang],
            user=user,
            csrf="x",
            path="/",
            languages=("en",),
            charts=drawn,
            errors={},
            year=2026,
            years=[2026],
            k=11,
            plot=charts.PLOT,
        )
        assert text["funnel"] in html and text["suppressed"] in html


def test_holds_and_erasure_on_the_referral_page_and_an_erased_inbox_item() -> None:
    """The hold form follows the agency's own hold; the coordinator's supervisor's erasure
    form, or the pending request; an erased delivery says "Erased" and offers its one action
    until acknowledged, and no empty field reads "None"."""
    from services.console.api import ERASURE_BASES
    from services.console.pages import ERASURE_TEXT, TEXT, _env

    shown = {"id": "r1", "reference": "NRM-2026-000001"}
    base = {
        "may_request_erasure": False,
        "pending_erasure": None,
        "erasure_bases": ERASURE_BASES,
        "may_hold": True,
        "held_by_us": False,
        "investigation_open": True,
        "holds": [],
    }

    def page(**panel: object) -> str:
        return _env.get_template("referral_retention.html.j2").render(
            lang="en", t=TEXT["en"], ET=ERASURE_TEXT, csrf="x", r=shown, **{**base, **panel}
        )

    police = page()
    assert '<p id="holds">No legal hold stands.</p>' in police
    assert ">Place legal hold</button>" in police and "Lift legal hold" not in police
    held = page(holds=[{"agency": "mvd-ctu", "placed_at": "2026-12-01T10:00:00Z"}], held_by_us=True)
    assert "<li>mvd-ctu (Placed at 2026-12-01T10:00:00Z)</li>" in held
    assert ">Lift legal hold</button>" in held and "Place legal hold" not in held
    assert "Place legal hold" not in page(investigation_open=False)  # intake would refuse it
    assert "legal hold" not in page(may_hold=False, holds=None).lower()

    coordinator = page(may_hold=False, may_request_erasure=True)
    assert '<option value="victim_request">The victim&#39;s request</option>' in coordinator
    assert ">Request erasure</button>" in coordinator
    pending = {
        "basis": "court_order",
        "requested_at": "2026-12-02T09:00:00Z",
        "requested_by": "nrm-coordinator",
    }
    asked = page(may_hold=False, may_request_erasure=True, pending_erasure=pending)
    assert "Court order (2026-12-02T09:00:00Z, nrm-coordinator)" in asked
    assert ">Withdraw request</button>" in asked and "Request erasure" not in asked

    erased: dict[str, object] = {
        "delivery_id": "d1",
        "referral_id": "r1",
        "reference": "NRM-2026-000001",
        "status": "erased",
        "disclosure": "full",
        "deadline": "2026-12-01T10:00:00Z",
        "rule": "police",
        "urgency": None,
        "region": None,
        "exploitation": [],
        "erased_at": "2026-12-03T10:00:00Z",
        "erasure_acknowledged_at": None,
        "time_left": "",
        "overdue": False,
    }
    for lang in ("en", "ru", "kk"):
        assert ERASURE_TEXT[lang].keys() == ERASURE_TEXT["en"].keys()
        rows = _env.get_template("inbox_rows.html.j2").render(
            lang=lang, t=TEXT[lang], ET=ERASURE_TEXT, csrf="x", rows=[erased]
        )
        assert "None" not in rows
        assert (
            f'<td data-label="{TEXT[lang]["status"]}">{ERASURE_TEXT[lang]["erased"]}</td>' in rows
        )
        assert ERASURE_TEXT[lang]["acknowledge_erasure"] in rows
    done = _env.get_template("inbox_rows.html.j2").render(
        lang="en",
        t=TEXT["en"],
        ET=ERASURE_TEXT,
        csrf="x",
        rows=[{**erased, "erasure_acknowledged_at": "2026-12-03T11:00:00Z"}],
    )
    assert "Erasure acknowledged" in done and "<button" not in done
