"""Broken object-level authorisation, tried exhaustively: every agency against every referral and
every delivery, on every read and act endpoint. Only the entitled agency succeeds; every other
gets the same 404 as for an id that does not exist, and nothing changes."""

from typing import Any

import pytest

from tests.e2e.conftest import AGENCIES, SQLITE_ONLY, Exchange
from tests.e2e.test_rules import CASES, delivered, inbox_item, submit
from tests.support import wait_for

# Every agency against every referral and delivery: 93 s on a busy 2-core machine (2026-11-30),
# near the default 120 s hang guard.
pytestmark = [pytest.mark.xdist_group("e2e-bola"), SQLITE_ONLY, pytest.mark.timeout(300)]

SUBMITTED = [
    "1-shelter-covering-the-region",
    "4-minor-child-protection-without-consent",
    "8-nothing-matched-coordinator",
]
ACTIONS = ("acknowledge", "accept", "decline", "complete")


async def test_every_agency_against_every_referral_and_delivery(exchange: Exchange) -> None:
    async with exchange.client() as c:
        referrals: dict[str, tuple[str, set[str]]] = {}  # id → (submitter, recipients)
        for name in SUBMITTED:
            case = CASES[name]
            rid = await submit(exchange, c, case)
            referrals[rid] = (case.submitter, set(case.expected))
        deliveries: dict[str, str] = {}  # delivery id → owning agency
        for rid, (_, recipients) in referrals.items():
            await delivered(exchange, c, rid, recipients)
            for agency in recipients:
                deliveries[(await inbox_item(exchange, c, agency, rid))["delivery_id"]] = agency
        assert len(deliveries) == sum(len(r) for _, r in referrals.values())

        def refused(r: Any, what: str) -> None:
            assert r.status_code == 404, f"{what}: {r.status_code} {r.text}"
            assert r.headers["content-type"] == "application/problem+json"

        denied_reads: dict[str, int] = {}
        for agency in AGENCIES:
            h = exchange.headers(agency)
            for rid, (submitter, recipients) in referrals.items():
                what = f"{agency} on {rid}"
                r = await c.get(f"/v1/referrals/{rid}", headers=h)
                if agency == submitter or agency in recipients:
                    assert r.status_code == 200, what
                else:
                    refused(r, f"read by {what}")
                    denied_reads[rid] = denied_reads.get(rid, 0) + 1
                r = await c.get(f"/v1/referrals/{rid}/status", headers=h)
                if agency == submitter:
                    assert r.status_code == 200, what
                else:
                    refused(r, f"status by {what}")
                    consent = {
                        "services": False,
                        "law_enforcement": False,
                        "statistics": False,
                        "given_by": "self",
                        "recorded_at": "2026-11-21T10:00:00Z",
                    }
                    if agency not in recipients:  # recipients with the victim may, at support+
                        r = await c.put(f"/v1/referrals/{rid}/consent", json=consent, headers=h)
                        refused(r, f"consent change by {what}")
                        r = await c.put(
                            f"/v1/referrals/{rid}/safety",
                            json={"do_not_contact": True},
                            headers=h,
                        )
                        refused(r, f"safety change by {what}")
                        r = await c.put(
                            f"/v1/referrals/{rid}/implicated",
                            json={"implicated": ["gp"]},
                            headers=h,
                        )
                        refused(r, f"naming implicated by {what}")
                        refused(await c.post(f"/v1/referrals/{rid}/recusal", headers=h), what)
                        r = await c.post(
                            f"/v1/referrals/{rid}/investigation",
                            json={"opened": True, "date": "2026-11-21", "number": "X-1"},
                            headers=h,
                        )
                        refused(r, f"investigation recorded by {what}")
                        if agency != "mvd-ctu":  # the competent authority of the example
                            r = await c.post(
                                f"/v1/referrals/{rid}/identification",
                                json={
                                    "decision": "reasonable_grounds",
                                    "decided_at": "2026-11-21T10:00:00Z",
                                },
                                headers=h,
                            )
                            refused(r, f"identification decided by {what}")
                    refused(await c.post(f"/v1/referrals/{rid}/withdraw", headers=h), what)
                # The audit API is for auditors only, whoever the agency.
                refused(await c.get(f"/v1/audit/referrals/{rid}/timeline", headers=h), what)
            # Listing shows the agency's own submissions and what it was sent, nothing else.
            listed = (await c.get("/v1/referrals", params={"limit": 100}, headers=h)).json()
            entitled = {rid for rid, (s, rs) in referrals.items() if agency == s or agency in rs}
            assert {i["id"] for i in listed["items"]} & set(referrals) == entitled, agency
            for delivery_id, owner in deliveries.items():
                r = await c.get(f"/v1/deliveries/{delivery_id}", headers=h)
                if agency == owner:
                    assert r.status_code == 200
                    continue
                refused(r, f"{agency} reading {owner}'s delivery")
                for action in ACTIONS:
                    r = await c.post(
                        f"/v1/deliveries/{delivery_id}/{action}",
                        json={"reason": "not mine"},
                        headers=h,
                    )
                    refused(r, f"{agency} trying {action} on {owner}'s delivery")

        # Nothing the refused calls tried took effect: consent, status and deliveries as before.
        for rid, (submitter, _) in referrals.items():
            view = (await c.get(f"/v1/referrals/{rid}", headers=exchange.headers(submitter))).json()
            if view["kind"] == "victim_referral":
                submitted = CASES[_case_of(submitter)].body["consent"]
                assert view["consent"]["law_enforcement"] is submitted["law_enforcement"]
            assert view["status"] != "withdrawn"
        for delivery_id, owner in deliveries.items():
            h = exchange.headers(owner)
            d = (await c.get(f"/v1/deliveries/{delivery_id}", headers=h)).json()
            assert d["status"] == "notified", d
            # ...and the owner can act on it.
            r = await c.post(f"/v1/deliveries/{delivery_id}/acknowledge", headers=h)
            assert r.status_code == 200, r.text

        # Every refused read is on the audit record, with who tried.
        async def denials_audited() -> bool:
            for rid, count in denied_reads.items():
                r = await c.get(
                    "/v1/audit/events",
                    params={"type": "access.denied", "referral": rid, "limit": 500},
                    headers=exchange.headers("auditor"),
                )
                if len(r.json()["items"]) < count:
                    return False
            return True

        await wait_for(denials_audited, timeout=30)


def _case_of(submitter: str) -> str:
    """Which of SUBMITTED this referral came from (one per submitter)."""
    return next(n for n in SUBMITTED if CASES[n].submitter == submitter)
