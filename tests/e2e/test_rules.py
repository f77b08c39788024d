"""Every rule of the example policy (DESIGN.md), through the whole running exchange: submitted to
intake, each agency's inbox holds exactly what the policy says, each agency reads it at its level
(or gets 404), the submitter's status lists the recipients, and the audit timeline shows it all."""

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import AGENCIES, Exchange
from tests.support import wait_for
from tests.unit.test_contracts import REFERRAL_EXAMPLE, TIP_EXAMPLE

pytestmark = pytest.mark.xdist_group("e2e-rules")

VICTIM = json.loads(REFERRAL_EXAMPLE)
TIP = json.loads(TIP_EXAMPLE)
DEADLINES = {
    "immediate": timedelta(hours=1),
    "high": timedelta(hours=4),
    "routine": timedelta(hours=24),
}


def victim(
    *,
    region: str = "KZ-79",
    age: int | None = 24,
    appears_minor: bool = False,
    services: bool = True,
    law_enforcement: bool = True,
    exploitation: tuple[str, ...] = ("sexual",),
    official: bool = False,
    urgency: str = "routine",
) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(VICTIM)
    body.update(
        region=region,
        exploitation=list(exploitation),
        official_involvement=official,
        urgency=urgency,
    )
    body["victim"]["age"] = age
    if age != 24:  # the example's date of birth makes 24
        del body["victim"]["identity"]["date_of_birth"]
    if appears_minor:
        body["victim"].update(appears_minor=True, age_basis="unknown")
    body["consent"].update(services=services, law_enforcement=law_enforcement)
    return body


def born(date_of_birth: str, **changes: Any) -> dict[str, Any]:
    """A victim whose age is given only by the date of birth."""
    body = victim(age=None, **changes)
    body["victim"]["identity"]["date_of_birth"] = date_of_birth
    return body


def tip(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {**TIP, **changes}
    return body


@dataclass
class Case:
    submitter: str
    body: dict[str, Any]
    # agency → (disclosure, rule): every recipient, and nobody else
    expected: dict[str, tuple[str, str]]


CASES = {
    "1-shelter-covering-the-region": Case(
        "labour-insp",
        victim(region="KZ-79"),
        {"ngo-south": ("support", "services-shelter"), "mvd-ctu": ("full", "police")},
    ),
    "1-no-shelter-covers-it-coordinator": Case(
        "labour-insp",
        victim(region="KZ-47"),
        {"nrm-coordinator": ("support", "services-shelter"), "mvd-ctu": ("full", "police")},
    ),
    "1-no-services-consent-no-shelter": Case(
        "labour-insp",
        victim(region="KZ-11", services=False),
        {"mvd-ctu": ("full", "police")},
    ),
    "2-police-anonymous-without-consent": Case(
        "ngo-south",
        victim(region="KZ-11", law_enforcement=False),
        {"ngo-north": ("support", "services-shelter"), "mvd-ctu": ("anonymous", "police")},
    ),
    "3-labour-inspectorate-as-police": Case(
        "ngo-north",
        victim(region="KZ-75", law_enforcement=False, exploitation=("labour", "servitude")),
        {
            "ngo-south": ("support", "services-shelter"),
            "mvd-ctu": ("anonymous", "police"),
            "labour-insp": ("anonymous", "labour"),
        },
    ),
    "3-submitter-is-never-its-own-recipient": Case(
        "labour-insp",
        victim(region="KZ-75", exploitation=("labour",)),
        {"ngo-south": ("support", "services-shelter"), "mvd-ctu": ("full", "police")},
    ),
    "4-minor-child-protection-without-consent": Case(
        "ngo-north",
        victim(region="KZ-71", age=15, services=False, law_enforcement=False, urgency="high"),
        {"child-rights": ("full", "minor"), "mvd-ctu": ("full", "police")},
    ),
    "4-no-age-appears-minor-presumed-a-child": Case(
        "ngo-north",
        victim(region="KZ-71", age=None, appears_minor=True, services=False, law_enforcement=False),
        {"child-rights": ("full", "minor"), "mvd-ctu": ("full", "police")},
    ),
    "4-birth-date-without-age-a-child": Case(
        "ngo-north",
        born("2012-05-01", region="KZ-71", services=False, law_enforcement=False),
        {"child-rights": ("full", "minor"), "mvd-ctu": ("full", "police")},
    ),
    "5-tip-naming-the-police-implicated": Case(
        "ngo-north",
        tip(official_involvement=True, implicated=["mvd-ctu"]),
        {
            "gp": ("full", "official-involvement"),
            "anti-corruption": ("full", "official-involvement"),
        },
    ),
    "5-tip-official-involvement": Case(
        "labour-insp",
        tip(official_involvement=True, urgency="immediate"),
        {
            "mvd-ctu": ("full", "police"),
            "gp": ("full", "official-involvement"),
            "anti-corruption": ("full", "official-involvement"),
        },
    ),
    "5-official-involvement-without-consent": Case(
        "ngo-south",
        victim(region="KZ-15", services=False, law_enforcement=False, official=True),
        {
            "mvd-ctu": ("anonymous", "police"),
            "gp": ("anonymous", "official-involvement"),
            "anti-corruption": ("anonymous", "official-involvement"),
        },
    ),
    "8-nothing-matched-coordinator": Case(
        "mvd-ctu",
        tip(official_involvement=False),
        {"nrm-coordinator": ("full", "default")},
    ),
}


async def inbox_item(ex: Exchange, c: httpx.AsyncClient, agency: str, rid: str) -> Any:
    r = await c.get("/v1/inbox", params={"referral": rid}, headers=ex.headers(agency))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) <= 1, items  # one delivery per referral and agency
    return items[0] if items else None


async def timeline(ex: Exchange, c: httpx.AsyncClient, rid: str) -> list[dict[str, Any]]:
    r = await c.get(f"/v1/audit/referrals/{rid}/timeline", headers=ex.headers("auditor"))
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


async def submit(ex: Exchange, c: httpx.AsyncClient, case: Case) -> str:
    r = await c.post("/v1/referrals", json=case.body, headers=ex.headers(case.submitter))
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/referrals/{r.json()['id']}"
    rid: str = r.json()["id"]
    return rid


async def delivered(ex: Exchange, c: httpx.AsyncClient, rid: str, agencies: Any) -> None:
    async def all_there() -> bool:
        return all([await inbox_item(ex, c, a, rid) for a in agencies])

    await wait_for(all_there, timeout=30)


@pytest.mark.parametrize("name", list(CASES))
async def test_rule(exchange: Exchange, name: str) -> None:
    case = CASES[name]
    async with exchange.client() as c:
        posted = datetime.now(UTC)
        rid = await submit(exchange, c, case)
        await delivered(exchange, c, rid, case.expected)

        # The submitter's status lists exactly the recipients, with rule and level, and sees
        # each notified (intake learns that from notify's events).
        async def status_now() -> dict[str, Any]:
            r = await c.get(f"/v1/referrals/{rid}/status", headers=exchange.headers(case.submitter))
            assert r.status_code == 200, r.text
            return {x["agency"]: x for x in r.json()["recipients"]}

        async def all_notified() -> bool:
            # Intake hears notify's case events and the router's decision on two topics: a
            # `delivery.notified` may come first (its row has no rule until the decision lands).
            now = await status_now()
            levels = {a: (x["disclosure"], x["rule"]) for a, x in now.items()}
            return {x["status"] for x in now.values()} == {"notified"} and levels == case.expected

        await wait_for(all_notified, timeout=30)
        status = await status_now()
        assert {a: (x["disclosure"], x["rule"]) for a, x in status.items()} == case.expected

        for agency in AGENCIES:
            item = await inbox_item(exchange, c, agency, rid)
            read = await c.get(
                f"/v1/referrals/{rid}",
                headers=exchange.headers(agency, **{"X-Purpose": f"e2e {name}"}),
            )
            if agency == case.submitter:
                assert item is None
                assert read.status_code == 200 and read.json()["disclosure"] == "full"
                continue
            if agency not in case.expected:
                assert item is None, f"{agency} was sent it"
                assert read.status_code == 404, f"{agency} could read it"
                assert read.headers["content-type"] == "application/problem+json"
                continue
            disclosure, rule = case.expected[agency]
            assert (item["disclosure"], item["rule"], item["status"]) == (
                disclosure,
                rule,
                "notified",
            )
            # Rule 6: the acknowledgement deadline follows the urgency.
            deadline = datetime.fromisoformat(item["deadline"])
            due = posted + DEADLINES[case.body["urgency"]]
            assert due - timedelta(seconds=5) <= deadline <= due + timedelta(seconds=60)
            assert (
                status[agency]["deadline"] == item["deadline"]
                or datetime.fromisoformat(status[agency]["deadline"]) == deadline
            )
            assert read.status_code == 200, read.text
            view = read.json()
            assert view["disclosure"] == disclosure
            if case.body["kind"] == "victim_referral":
                identity_shown = disclosure in ("full", "support")
                assert ("identity" in view["victim"]) is identity_shown
                assert ("contact" in view["victim"]) is identity_shown
            assert ("narrative" in view) is (disclosure == "full")

        # The audit timeline: submitted → routed (these recipients) → notified each → each read.
        readers = {*case.expected, case.submitter}
        refused = set(AGENCIES) - readers

        async def audited() -> bool:
            steps = await timeline(exchange, c, rid)
            reads = {e["agency"] for e in steps if e["type"] == "access.granted"}
            notified = {e["agency"] for e in steps if e["type"] == "delivery.notified"}
            denied = {e["agency"] for e in steps if e["type"] == "access.denied"}
            return reads >= readers and notified >= set(case.expected) and denied >= refused

        await wait_for(audited, timeout=30)
        steps = await timeline(exchange, c, rid)
        types = [e["type"] for e in steps]
        assert types[0] == "referral.submitted" and steps[0]["agency"] == case.submitter
        (routed,) = [e for e in steps if e["type"] == "referral.routed"]
        assert {(x["agency"], x["disclosure"], x["rule"]) for x in routed["recipients"]} == {
            (a, d, r) for a, (d, r) in case.expected.items()
        }
        notified = [e["agency"] for e in steps if e["type"] == "delivery.notified"]
        assert sorted(notified) == sorted(case.expected)  # once each
        assert types.index("referral.routed") < types.index("delivery.notified")
        denied = {e["agency"] for e in steps if e["type"] == "access.denied"}
        assert denied == refused  # every refused read is on the record


async def test_rule_7_declined_escalates_to_the_coordinator(exchange: Exchange) -> None:
    case = CASES["2-police-anonymous-without-consent"]
    async with exchange.client() as c:
        rid = await submit(exchange, c, case)
        await delivered(exchange, c, rid, case.expected)
        police = exchange.headers("mvd-ctu")
        item = await inbox_item(exchange, c, "mvd-ctu", rid)
        r = await c.post(f"/v1/deliveries/{item['delivery_id']}/acknowledge", headers=police)
        assert r.status_code == 200, r.text
        r = await c.post(f"/v1/deliveries/{item['delivery_id']}/decline", headers=police)
        assert r.status_code == 422  # a decline needs a reason
        r = await c.post(
            f"/v1/deliveries/{item['delivery_id']}/decline",
            json={"reason": "outside our jurisdiction"},
            headers=police,
        )
        assert r.status_code == 200, r.text
        await delivered(exchange, c, rid, ["nrm-coordinator"])
        escalated = await inbox_item(exchange, c, "nrm-coordinator", rid)
        assert (escalated["disclosure"], escalated["rule"]) == ("support", "escalation")
        view = (
            await c.get(f"/v1/referrals/{rid}", headers=exchange.headers("nrm-coordinator"))
        ).json()
        assert view["disclosure"] == "support" and "identity" in view["victim"]

        async def declined_at_submitter() -> bool:
            r = await c.get(f"/v1/referrals/{rid}/status", headers=exchange.headers("ngo-south"))
            got = {x["agency"]: (x["status"], x["rule"]) for x in r.json()["recipients"]}
            return got.get("mvd-ctu") == ("escalated", "police") and got.get("nrm-coordinator") == (
                "notified",
                "escalation",
            )

        await wait_for(declined_at_submitter, timeout=30)

        async def audited() -> bool:
            # Audit reads each topic on its own: the escalation's routing (nrm.routing) can be
            # recorded before the decline that caused it (nrm.case-events) arrives.
            types = [e["type"] for e in await timeline(exchange, c, rid)]
            return types.count("referral.routed") == 2 and "referral.declined" in types

        await wait_for(audited, timeout=30)
        types = [e["type"] for e in await timeline(exchange, c, rid)]
        assert types.index("referral.declined") < len(types) - 1 - types[::-1].index(
            "referral.routed"
        )
        # Declining again changes nothing (409), and does not escalate twice.
        r = await c.post(
            f"/v1/deliveries/{item['delivery_id']}/decline",
            json={"reason": "again"},
            headers=police,
        )
        assert r.status_code == 409
        r = await c.get(f"/v1/inbox?referral={rid}", headers=exchange.headers("nrm-coordinator"))
        assert len(r.json()["items"]) == 1


async def test_rule_7_escalation_is_capped_by_consent(exchange: Exchange) -> None:
    """The adult who refused both services and law enforcement: after the police decline, the
    coordinator receives it at `anonymous`, with nothing identifying in its read or inbox."""
    case = Case(
        "ngo-south",
        victim(region="KZ-11", services=False, law_enforcement=False),
        {"mvd-ctu": ("anonymous", "police")},
    )
    async with exchange.client() as c:
        rid = await submit(exchange, c, case)
        await delivered(exchange, c, rid, case.expected)
        police = exchange.headers("mvd-ctu")
        item = await inbox_item(exchange, c, "mvd-ctu", rid)
        for action, body in (("acknowledge", None), ("decline", {"reason": "no grounds"})):
            r = await c.post(
                f"/v1/deliveries/{item['delivery_id']}/{action}", json=body, headers=police
            )
            assert r.status_code == 200, r.text
        await delivered(exchange, c, rid, ["nrm-coordinator"])
        escalated = await inbox_item(exchange, c, "nrm-coordinator", rid)
        assert (escalated["disclosure"], escalated["rule"]) == ("anonymous", "escalation")

        # Intake and notify apply the decision each on its own: intake may be a moment behind.
        async def readable() -> bool:
            got = await c.get(f"/v1/referrals/{rid}", headers=exchange.headers("nrm-coordinator"))
            return got.status_code == 200

        await wait_for(readable, timeout=30)
        r = await c.get(f"/v1/referrals/{rid}", headers=exchange.headers("nrm-coordinator"))
        assert r.status_code == 200 and r.json()["disclosure"] == "anonymous"
        inbox = await c.get("/v1/inbox", headers=exchange.headers("nrm-coordinator"))
        for secret in ("Aigerim Example", "N1234567", "+77010000000", "waitress"):
            assert secret not in r.text and secret not in inbox.text


async def test_the_audit_log_verifies_after_the_rules(exchange: Exchange) -> None:
    async with exchange.client() as c:
        r = await c.get("/v1/audit/verify", headers=exchange.headers("auditor"))
        assert r.status_code == 200
        body = r.json()
        assert body["ok"] is True and body["first_bad_sequence"] is None and body["records"] > 0
