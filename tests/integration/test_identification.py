"""Identification through the real broker (intake, router and notify twice, audit): the
competent authority's decisions and their state machine, the reflection period, follow-up
referrals, the clocks in `explain`, and an overdue reasonable-grounds decision escalated once.

The policy is a copy of the example with clocks of seconds (a reload shortens the deadline for
the overdue case), so nothing waits for days."""

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlmodel import col, select

from services.common.broker import EmbeddedBroker
from services.common.db import create_engine, session_factory
from services.intake.app import IdentificationClock
from services.notify.models import Delivery, DeliveryChange
from services.router.settings import EXAMPLE_POLICY
from tests.integration.test_flow import stack
from tests.support import Database, outbox_payloads, wait_for
from tests.tokens import TokenMint
from tests.unit.test_contracts import REFERRAL_EXAMPLE

PROBLEM = "application/problem+json"


def policy_text(due: str) -> str:
    text = EXAMPLE_POLICY.read_text()
    for old, new in (
        ("reasonable_grounds_due: 5d", f"reasonable_grounds_due: {due}"),
        ("reflection_period: 30d", "reflection_period: 2s"),
        ("reflection_minimum: 30d", "reflection_minimum: 1s"),
    ):
        assert old in text
        text = text.replace(old, new)
    return text


def body(citizenship: str) -> str:
    """The DESIGN.md referral (KZ-79: the southern shelter and the police at `full`), of a
    victim of `citizenship` who needs repatriation."""
    referral = json.loads(REFERRAL_EXAMPLE)
    referral["victim"]["citizenship"] = citizenship
    referral["victim"]["needs"] = ["shelter", "repatriation"]
    return json.dumps(referral)


def at(when: datetime) -> str:
    return when.isoformat()


async def test_decisions_reflection_follow_up_and_overdue_once(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    mint = TokenMint()
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(EXAMPLE_POLICY.parent / "agencies.yaml", config / "agencies.yaml")
    policy = config / "routing.yaml"
    policy.write_text(policy_text(due="60s"))
    databases: dict[str, Database] = {}
    apps: dict[str, FastAPI] = {}
    async with stack(
        db.kind,
        own_broker,
        tmp_path,
        mint,
        intake={"identification_sweep_seconds": 0.05},
        router={"policy_file": policy},
        twice=("router", "notify"),
        databases=databases,
        apps=apps,
    ) as c:
        submitter = mint.headers("labour-insp", "referrer")
        authority = mint.headers("mvd-ctu", "supervisor")

        async def submit(citizenship: str) -> str:
            r = await c["intake"].post(
                "/v1/referrals",
                content=body(citizenship),
                headers={"content-type": "application/json", **submitter},
            )
            assert r.status_code == 201, r.text
            rid: str = r.json()["id"]
            return rid

        async def status(rid: str) -> dict[str, Any]:
            r = await c["intake"].get(f"/v1/referrals/{rid}/status", headers=submitter)
            assert r.status_code == 200, r.text
            found: dict[str, Any] = r.json()
            return found

        async def decide(
            rid: str,
            decision: str,
            *,
            headers: dict[str, str] = authority,
            when: datetime | None = None,
        ) -> httpx.Response:
            return await c["intake"].post(
                f"/v1/referrals/{rid}/identification",
                json={
                    "decision": decision,
                    "decided_at": at(when or datetime.now(UTC)),
                    "basis": "interview",
                },
                headers=headers,
            )

        one, two, three, four = [await submit(x) for x in ("UZ", "KZ", "UZ", "UZ")]

        async def clocks_known() -> bool:
            for rid in (one, two, three, four):
                if (await status(rid))["identification"] is None:
                    return False
            return True

        await wait_for(clocks_known, timeout=60)
        # The running clocks: every authority's for the coordinator's supervisors, the
        # authority's own for its supervisors, none for another agency's.
        for agency, expected in (
            ("nrm-coordinator", {one, two, three, four}),
            ("mvd-ctu", {one, two, three, four}),
            ("ngo-south", set()),
        ):
            r = await c["intake"].get(
                "/v1/identification", headers=mint.headers(agency, "supervisor")
            )
            assert r.status_code == 200, r.text
            assert {i["referral_id"] for i in r.json()["items"]} == expected, agency
        r = await c["intake"].get(
            "/v1/identification", headers=mint.headers("mvd-ctu", "caseworker")
        )
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        submitted_at = datetime.fromisoformat(
            (await c["intake"].get(f"/v1/referrals/{one}", headers=submitter)).json()[
                "submitted_at"
            ]
        )
        ident = (await status(one))["identification"]
        assert ident == {
            "status": "potential",
            "reasonable_grounds_due": (submitted_at + timedelta(seconds=60))
            .isoformat()
            .replace("+00:00", "Z"),
            "reflection_ends": None,
            "decided_at": None,
            "basis": None,
            "authority": "mvd-ctu",
            "overdue": False,
        }

        # Only a supervisor of the competent authority decides; anyone else learns nothing.
        for agency, role in (
            ("mvd-ctu", "caseworker"),
            ("ngo-south", "supervisor"),
            ("labour-insp", "supervisor"),
            ("nrm-coordinator", "supervisor"),
        ):
            r = await decide(one, "reasonable_grounds", headers=mint.headers(agency, role))
            assert r.status_code == 404, (agency, role, r.text)
            assert r.headers["content-type"] == PROBLEM
        # The state machine: `confirmed` does not follow `potential`.
        r = await decide(one, "confirmed")
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == (
            "A `confirmed` decision cannot follow `potential` (it follows `reasonable_grounds`)."
        )

        # Reasonable grounds start the reflection period (2 s in this policy).
        grounds = datetime.now(UTC)
        for rid in (one, two, four):
            r = await decide(rid, "reasonable_grounds", when=grounds)
            assert r.status_code == 200, r.text
        assert r.json()["status"] == "reasonable_grounds"
        ends = grounds + timedelta(seconds=2)
        assert datetime.fromisoformat(r.json()["reflection_ends"]) == ends
        # A conclusive negative decision waits for the period's end ...
        r = await decide(four, "not_confirmed")
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        assert "recovery and reflection period runs until" in r.json()["detail"]
        # ... a positive one never does.
        r = await decide(two, "confirmed")
        assert r.status_code == 200 and r.json()["status"] == "confirmed"
        # No reasonable grounds ends it: nothing follows.
        assert (await decide(three, "no_reasonable_grounds")).status_code == 200
        r = await decide(three, "confirmed")
        assert r.status_code == 409

        auditor = mint.headers("audit-office", "auditor")

        async def timeline(rid: str) -> list[dict[str, Any]]:
            r = await c["audit"].get(f"/v1/audit/referrals/{rid}/timeline", headers=auditor)
            events: list[dict[str, Any]] = r.json()["events"]
            return events

        async def period_over() -> bool:
            types = {e["type"] for e in await timeline(four)}
            return "referral.reflection_ended" in types

        await wait_for(period_over, timeout=60)
        assert (await decide(four, "not_confirmed")).status_code == 200
        r = await decide(one, "confirmed")
        assert r.status_code == 200, r.text

        # A confirmed victim from abroad who needs repatriation: the coordinator is brought in.
        coordinator = mint.headers("nrm-coordinator", "caseworker")

        async def followed_up() -> list[dict[str, Any]]:
            r = await c["notify"].get(f"/v1/inbox?referral={one}", headers=coordinator)
            items: list[dict[str, Any]] = r.json()["items"]
            return items

        await wait_for(lambda: _nonempty(followed_up), timeout=60)
        (item,) = await followed_up()
        assert (item["rule"], item["disclosure"]) == ("repatriation", "support")

        # The submitter's status, a recipient's view and the audit log all show it.
        mine = (await status(one))["identification"]
        assert mine["status"] == "confirmed" and mine["basis"] == "interview"
        shelter = mint.headers("ngo-south", "caseworker")
        seen = (await c["intake"].get(f"/v1/referrals/{one}", headers=shelter)).json()
        assert seen["identification"]["status"] == "confirmed"
        assert seen["victim"]["status"] == "confirmed"

        async def audited() -> bool:
            types = [e["type"] for e in await timeline(one)]
            return (
                "referral.reflection_ended" in types
                and types.count("referral.identification_decided") == 2
            )

        await wait_for(audited, timeout=60)
        steps = [
            e
            for e in await timeline(one)
            if e["type"].startswith(("referral.identification", "referral.reflection"))
        ]
        assert [(e["type"], e.get("decision")) for e in steps] == [
            ("referral.identification_decided", "reasonable_grounds"),
            ("referral.reflection_started", None),
            ("referral.reflection_ended", None),
            ("referral.identification_decided", "confirmed"),
        ]
        assert {e["actor"] for e in steps if e["type"].endswith("decided")} == {"mvd-ctu"}

        # Every recipient heard of the decisions through its channels (here: the live stream).
        async with databases["notify"].sessions() as session:
            kinds = list(
                await session.exec(
                    select(DeliveryChange.kind, DeliveryChange.agency)
                    .join(Delivery, col(Delivery.id) == col(DeliveryChange.delivery_id))
                    .where(col(Delivery.referral_id) == one)
                )
            )
        decided = {a for k, a in kinds if k == "referral.identification_decided"}
        assert {"ngo-south", "mvd-ctu"} <= decided

        # Overdue: a policy that gives 1 s, a referral nobody decides, two intake clocks, two
        # routers and two notify instances: escalated to the coordinator exactly once.
        policy.write_text(policy_text(due="1s"))
        admin = mint.headers("admin", "admin")
        for name in ("router", "router2"):
            r = await c[name].post("/v1/routing/policy/reload", headers=admin)
            assert r.status_code == 200 and r.json()["changed"] is True, r.text
        r = await c["router"].post(
            "/v1/routing/explain",
            content=body("UZ"),
            headers={"content-type": "application/json", **submitter},
        )
        clocks = r.json()["identification"]
        assert (
            clocks["authority"],
            clocks["reflection_period_seconds"],
            clocks["overdue_to"],
            clocks["overdue_disclosure"],
        ) == ("mvd-ctu", 2.0, "nrm-coordinator", "support")
        assert (
            timedelta(0)
            < datetime.fromisoformat(clocks["reasonable_grounds_due"]) - datetime.now(UTC)
            <= timedelta(seconds=1)
        )

        second_engine = create_engine(databases["intake"].url, search_path=db_schema(databases))
        second_clock = IdentificationClock(sessions=session_factory(second_engine), interval=0.05)
        await second_clock.start()
        try:
            late = await submit("UZ")

            async def escalated() -> bool:
                r = await c["router"].get(
                    f"/v1/routing/referrals/{late}/escalations", headers=submitter
                )
                return r.status_code == 200 and any(
                    e["outcome"] == "escalated to nrm-coordinator (support)" for e in r.json()
                )

            await wait_for(escalated, timeout=60)
            first = apps["intake"].state.clock
            ticks = (first.ticks, second_clock.ticks)
            await wait_for(
                lambda: _true(first.ticks > ticks[0] + 10 and second_clock.ticks > ticks[1] + 10),
                timeout=30,
            )
        finally:
            await second_clock.stop()
            await second_engine.dispose()

        overdue = [
            e
            for e in await outbox_payloads(databases["intake"], "referral.identification_overdue")
            if e["referral_id"] == late
        ]
        assert [(e["authority"]) for e in overdue] == ["mvd-ctu"]
        escalations = [
            e
            for e in await outbox_payloads(databases["router"], "referral.routed")
            if e["referral_id"] == late and e["reason"] == "escalation"
        ]
        assert [
            [(x["agency"], x["disclosure"], x["rule"]) for x in e["recipients"]]
            for e in escalations
        ] == [[("nrm-coordinator", "support", "identification-overdue")]]

        async def delivered_once() -> bool:
            async with databases["notify"].sessions() as session:
                rows = list(
                    await session.exec(
                        select(DeliveryChange.kind)
                        .join(Delivery, col(Delivery.id) == col(DeliveryChange.delivery_id))
                        .where(
                            col(Delivery.referral_id) == late,
                            col(Delivery.agency) == "nrm-coordinator",
                        )
                    )
                )
            return rows.count("delivery.escalated_to_you") == 1

        await wait_for(delivered_once, timeout=60)
        assert (await status(late))["identification"]["overdue"] is True


def db_schema(databases: dict[str, Database]) -> str | None:
    return databases["intake"].schema


async def _nonempty(probe: Any) -> bool:
    return bool(await probe())


async def _true(value: bool) -> bool:
    return value
