"""Victim safety in the data (issue 16), through intake, router, notify and audit over the real
broker: consent caps escalation, contact and address are protected, the people with the victim
record consent, implicated agencies never see the case, children are presumed, BCP 47 languages.

Two stacks in all (each test runs several referrals through one), to keep the suite lean."""

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.common.broker import EmbeddedBroker
from tests.integration.test_flow import stack
from tests.support import Database, Receiver, read_topic, wait_for
from tests.tokens import TokenMint
from tests.unit.test_contracts import REFERRAL_EXAMPLE, TIP_EXAMPLE

Clients = dict[str, httpx.AsyncClient]
NO_CONSENT = {"services": False, "law_enforcement": False, "statistics": False}


def referral(**changes: Any) -> dict[str, Any]:
    """The DESIGN.md victim referral with top-level keys (and `victim`/`consent` keys) changed."""
    body: dict[str, Any] = json.loads(REFERRAL_EXAMPLE)
    for key in ("victim", "consent"):
        body[key].update(changes.pop(key, {}))
    body.update(changes)
    return body


class Exchange:
    def __init__(self, c: Clients, mint: TokenMint) -> None:
        self.c = c
        self.mint = mint

    def as_(self, agency: str, role: str = "caseworker") -> dict[str, str]:
        return self.mint.headers(agency, role)

    async def submit(self, agency: str, body: dict[str, Any]) -> str:
        r = await self.c["intake"].post(
            "/v1/referrals", json=body, headers=self.as_(agency, "referrer")
        )
        assert r.status_code == 201, r.text
        rid: str = r.json()["id"]
        return rid

    async def read(self, agency: str, rid: str, role: str = "caseworker") -> httpx.Response:
        return await self.c["intake"].get(f"/v1/referrals/{rid}", headers=self.as_(agency, role))

    async def inbox(self, agency: str, rid: str) -> list[dict[str, Any]]:
        r = await self.c["notify"].get(f"/v1/inbox?referral={rid}", headers=self.as_(agency))
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def status(self, submitter: str, rid: str) -> dict[str, dict[str, Any]]:
        r = await self.c["intake"].get(
            f"/v1/referrals/{rid}/status", headers=self.as_(submitter, "referrer")
        )
        assert r.status_code == 200, r.text
        return {x["agency"]: x for x in r.json()["recipients"]}

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
        await wait_for(check, timeout=timeout)

    async def delivered(self, rid: str, agency: str) -> dict[str, Any]:
        """The agency's inbox item, once intake too knows the agency as a recipient (notify
        and intake each apply the routing decision on their own, in either order)."""

        async def there() -> bool:
            if not await self.inbox(agency, rid):
                return False
            return (await self.read(agency, rid)).status_code == 200

        await self.until(there)
        (item,) = await self.inbox(agency, rid)
        return item

    async def decline(self, agency: str, delivery_id: str) -> None:
        for action, body in (("acknowledge", None), ("decline", {"reason": "not ours"})):
            r = await self.c["notify"].post(
                f"/v1/deliveries/{delivery_id}/{action}", json=body, headers=self.as_(agency)
            )
            assert r.status_code == 200, r.text


async def test_consent_caps_escalation_contact_and_address_and_recipients_record_consent(
    db: Database,
    own_broker: EmbeddedBroker,
    tmp_path: Path,
    mailbox: Any,
    receiver: Receiver,
) -> None:
    box, smtp_port = mailbox
    await receiver.start()
    mint = TokenMint()
    overrides = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "webhook_allowed_schemes": ["http"],
        "webhook_allow_private": True,
    }
    canaries = [f"canary-{uuid.uuid4().hex}" for _ in range(5)]
    async with stack(db.kind, own_broker, tmp_path, mint, notify=overrides) as c:
        ex = Exchange(c, mint)
        admin = mint.headers("admin", "admin")
        r = await c["notify"].put(
            "/v1/agencies/nrm-coordinator/webhook", json={"url": receiver.url}, headers=admin
        )
        assert r.status_code == 200, r.text
        r = await c["notify"].put(
            "/v1/agencies/nrm-coordinator/email",
            json={"addresses": ["duty@coordinator.example"], "language": "en"},
            headers=admin,
        )
        assert r.status_code == 200, r.text

        # 1. An adult who refused both services and law enforcement; a Karakalpak speaker.
        refused = referral(
            region="KZ-11",
            victim={
                "languages": ["kaa", "ru"],
                "identity": {"full_name": canaries[0], "document_number": canaries[1][:60]},
                "contact": {
                    "phone": "+77010000001",
                    "email": f"{canaries[2]}@example.org",
                    "address": canaries[3],
                    "safe_to_contact": True,
                },
            },
            consent=NO_CONSENT,
            narrative=canaries[4],
        )
        rid = await ex.submit("ngo-south", refused)
        police = await ex.delivered(rid, "mvd-ctu")
        assert (police["disclosure"], police["rule"]) == ("anonymous", "police")
        await ex.decline("mvd-ctu", police["delivery_id"])
        escalated = await ex.delivered(rid, "nrm-coordinator")
        # Consent caps the escalation: the coordinator reads `anonymous`, nothing identifying.
        assert (escalated["disclosure"], escalated["rule"]) == ("anonymous", "escalation")
        view = await ex.read("nrm-coordinator", rid)
        assert view.status_code == 200, view.text
        assert view.json()["disclosure"] == "anonymous"
        assert "identity" not in view.json()["victim"] and "narrative" not in view.json()

        async def told() -> bool:
            return bool(box.messages) and bool(receiver.received)

        await ex.until(told)
        inbox = (await c["notify"].get("/v1/inbox", headers=ex.as_("nrm-coordinator"))).text
        places = {
            "coordinator's view": view.text,
            "coordinator's inbox": inbox,
            "webhook": " ".join(b.decode() for _, b in receiver.received),
            "e-mail": " ".join(m.as_string() for m in box.messages),
        }
        assert rid in places["webhook"] and "escalated" in places["e-mail"].lower()
        leaks = [(where, x) for where, text in places.items() for x in canaries if x[:40] in text]
        assert not leaks
        # The submitter still sees all of it, the Karakalpak language included.
        own = (await ex.read("ngo-south", rid, "referrer")).json()
        assert own["victim"]["languages"] == ["kaa", "ru"]
        assert own["victim"]["contact"]["address"] == canaries[3]

        # 2. Not safe to contact: no recipient gets a phone or an e-mail; the address, not
        # shared, goes to nobody.
        unsafe = referral(
            victim={
                "contact": {
                    "phone": "+77010000002",
                    "email": "victim@example.org",
                    "address": "Street 1",
                    "safe_to_contact": False,
                }
            }
        )
        rid2 = await ex.submit("labour-insp", unsafe)
        await ex.delivered(rid2, "ngo-south")
        await ex.delivered(rid2, "mvd-ctu")
        for agency, level in (("ngo-south", "support"), ("mvd-ctu", "full")):
            got = (await ex.read(agency, rid2)).json()
            assert got["disclosure"] == level
            assert got["victim"]["identity"]["full_name"] == "Aigerim Example"
            assert got["victim"]["contact"] == {"safe_to_contact": False}, agency
        mine = (await ex.read("labour-insp", rid2, "referrer")).json()["victim"]["contact"]
        assert (mine["phone"], mine["address"]) == ("+77010000002", "Street 1")

        # Safe to contact, the address shared with the shelter only; then the shelter records
        # `do_not_contact` (a trafficker nearby): the phone disappears for everyone.
        shared = referral(
            victim={
                "contact": {
                    "phone": "+77010000003",
                    "address": "Street 3",
                    "address_shared_with": ["ngo-south"],
                    "safe_to_contact": True,
                }
            }
        )
        rid3 = await ex.submit("labour-insp", shared)
        await ex.delivered(rid3, "ngo-south")
        await ex.delivered(rid3, "mvd-ctu")
        shelter = (await ex.read("ngo-south", rid3)).json()["victim"]["contact"]
        assert shelter == {"safe_to_contact": True, "phone": "+77010000003", "address": "Street 3"}
        police_sees = (await ex.read("mvd-ctu", rid3)).json()["victim"]["contact"]
        assert police_sees == {"safe_to_contact": True, "phone": "+77010000003"}
        r = await c["intake"].put(
            f"/v1/referrals/{rid3}/safety",
            json={
                "do_not_contact": True,
                "trafficker_nearby": True,
                "safe_channels": ["through_agency"],
                "risk_level": "medium",
                "assessed_by": "shelter duty caseworker",
                "assessed_at": "2026-11-21T09:00:00Z",
            },
            headers=ex.as_("ngo-south"),
        )
        assert r.status_code == 200, r.text
        for agency in ("ngo-south", "mvd-ctu"):
            got = (await ex.read(agency, rid3)).json()["victim"]
            assert "phone" not in got["contact"], agency
            assert got["safety"]["do_not_contact"] is True

        # 3. The shelter, with the victim, records the withdrawal of law-enforcement consent
        # (in Karakalpak, through an interpreter, orally): the police drop to `anonymous`.
        withdrawal = {
            "services": True,
            "law_enforcement": False,
            "statistics": True,
            "given_by": "self",
            "recorded_at": "2026-11-22T10:00:00Z",
        }
        r = await c["intake"].put(
            f"/v1/referrals/{rid2}/consent", json=withdrawal, headers=ex.as_("ngo-south")
        )
        assert r.status_code == 422  # a recipient states language, interpreter and form
        assert {e["path"] for e in r.json()["errors"]} == {"/language", "/interpreter", "/form"}
        spoken = {**withdrawal, "language": "kaa", "interpreter": True, "form": "oral"}
        r = await c["intake"].put(
            f"/v1/referrals/{rid2}/consent", json=spoken, headers=ex.as_("ngo-south")
        )
        assert r.status_code == 200, r.text
        assert r.json()["consent"]["recorded_by"] == "ngo-south"
        after = (await ex.read("mvd-ctu", rid2)).json()
        assert after["disclosure"] == "anonymous" and "identity" not in after["victim"]

        async def police_inbox_anonymous() -> bool:
            (item,) = await ex.inbox("mvd-ctu", rid2)
            return bool(item["disclosure"] == "anonymous")

        await ex.until(police_inbox_anonymous, timeout=10)
        # A recipient at `anonymous` is not with the victim: it cannot record consent.
        r = await c["intake"].put(
            f"/v1/referrals/{rid2}/consent",
            json={**spoken, "law_enforcement": True},
            headers=ex.as_("mvd-ctu"),
        )
        assert r.status_code == 404


async def test_implicated_agencies_presumed_minors_high_risk_and_recusal(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    mint = TokenMint()
    async with stack(db.kind, own_broker, tmp_path, mint) as c:
        ex = Exchange(c, mint)

        # 0. A misspelt agency is refused, never taken as "nobody implicated".
        r = await c["intake"].post(
            "/v1/referrals",
            json={**json.loads(TIP_EXAMPLE), "implicated": ["gp", "mvdctu"]},
            headers=ex.as_("ngo-north", "referrer"),
        )
        assert r.status_code == 422, r.text
        assert [e["path"] for e in r.json()["errors"]] == ["tip/implicated/1"]
        assert "mvdctu" in r.json()["errors"][0]["message"]

        # 1. A tip about police protecting a brothel names the police implicated.
        tip = {**json.loads(TIP_EXAMPLE), "implicated": ["mvd-ctu"]}
        rid = await ex.submit("ngo-north", tip)
        gp = await ex.delivered(rid, "gp")
        await ex.delivered(rid, "anti-corruption")
        assert set(await ex.status("ngo-north", rid)) == {"gp", "anti-corruption"}
        own = (await ex.read("ngo-north", rid, "referrer")).json()
        assert own["implicated"] == ["mvd-ctu"]
        assert "implicated" not in (await ex.read("gp", rid)).json()
        # The prosecutor declines: escalation goes to the coordinator, never to the police.
        await ex.decline("gp", gp["delivery_id"])
        await ex.delivered(rid, "nrm-coordinator")
        assert set(await ex.status("ngo-north", rid)) == {
            "gp",
            "anti-corruption",
            "nrm-coordinator",
        }
        assert await ex.inbox("mvd-ctu", rid) == []
        assert (await ex.read("mvd-ctu", rid)).status_code == 404
        r = await c["intake"].put(
            f"/v1/referrals/{rid}/implicated",
            json={"implicated": ["gp"]},
            headers=ex.as_("mvd-ctu", "supervisor"),
        )
        assert r.status_code == 404  # an implicated agency can do nothing with it
        r = await c["intake"].put(
            f"/v1/referrals/{rid}/implicated",
            json={"implicated": ["anti-corruptoin"]},
            headers=ex.as_("nrm-coordinator"),
        )
        assert r.status_code == 422, r.text
        assert [e["path"] for e in r.json()["errors"]] == ["implicated/0"]
        # The coordinator (an overseer) names anti-corruption too: it loses the case at once.
        r = await c["intake"].put(
            f"/v1/referrals/{rid}/implicated",
            json={"implicated": ["anti-corruption"]},
            headers=ex.as_("nrm-coordinator"),
        )
        assert r.status_code == 200, r.text
        assert r.json()["implicated"] == ["mvd-ctu", "anti-corruption"]
        assert (await ex.read("anti-corruption", rid)).status_code == 404

        async def gone() -> bool:
            return await ex.inbox("anti-corruption", rid) == []

        await ex.until(gone, timeout=10)
        assert set(await ex.status("ngo-north", rid)) == {"gp", "nrm-coordinator"}
        # A shelter is not an overseer: it may not name anyone.
        r = await c["intake"].put(
            f"/v1/referrals/{rid}/implicated",
            json={"implicated": ["gp"]},
            headers=ex.as_("labour-insp"),
        )
        assert r.status_code == 404

        # With the police and the coordinator both implicated, a decline has nowhere to go:
        # the submitter is told why in the router's escalations view (nobody else may see it).
        both = {**json.loads(TIP_EXAMPLE), "implicated": ["mvd-ctu", "nrm-coordinator"]}
        stuck = await ex.submit("ngo-north", both)
        await ex.decline("gp", (await ex.delivered(stuck, "gp"))["delivery_id"])
        escalations = f"/v1/routing/referrals/{stuck}/escalations"

        async def told() -> bool:
            r = await c["router"].get(escalations, headers=ex.as_("ngo-north", "referrer"))
            return r.status_code == 200 and bool(r.json())

        await ex.until(told)
        r = await c["router"].get(escalations, headers=ex.as_("ngo-north", "referrer"))
        assert [(e["agency"], e["cause"], e["outcome"]) for e in r.json()] == [
            (
                "gp",
                "referral.declined",
                "not escalated: every escalation recipient is implicated or excluded",
            )
        ]
        assert (await c["router"].get(escalations, headers=ex.as_("gp"))).status_code == 404

        # 2. No age, appearing to be a child, no consent: child protection at `full`.
        child = referral(
            victim={"age": None, "appears_minor": True, "age_basis": "unknown"},
            consent={**NO_CONSENT, "given_by": "self"},
        )
        child["victim"]["identity"].pop("date_of_birth")
        rid2 = await ex.submit("ngo-south", child)
        item = await ex.delivered(rid2, "child-rights")
        assert (item["disclosure"], item["rule"], item["minor"]) == ("full", "minor", True)
        seen = (await ex.read("child-rights", rid2)).json()
        assert seen["disclosure"] == "full" and seen["victim"]["minor_presumed"] is True

        # 3. Assessed at high risk later: urgency `immediate`, the coordinator brought in at
        # the level consent allows; the bus carries the level only.
        rid3 = await ex.submit("labour-insp", referral())
        await ex.delivered(rid3, "ngo-south")
        r = await c["intake"].put(
            f"/v1/referrals/{rid3}/safety",
            json={
                "risk_level": "high",
                "trafficker_nearby": True,
                "safe_times": "weekdays 10:00-12:00",
                "assessed_by": "shelter duty caseworker",
                "assessed_at": "2026-11-21T09:00:00Z",
            },
            headers=ex.as_("ngo-south"),
        )
        assert r.status_code == 200, r.text
        assert r.json()["urgency"] == "immediate"
        coordinator = await ex.delivered(rid3, "nrm-coordinator")
        assert (coordinator["disclosure"], coordinator["rule"]) == ("support", "high-risk")
        assert coordinator["urgency"] == "immediate"

        async def shelter_hurried() -> bool:
            (item,) = await ex.inbox("ngo-south", rid3)
            return bool(item["urgency"] == "immediate")

        await ex.until(shelter_hurried, timeout=10)
        (shelter_item,) = await ex.inbox("ngo-south", rid3)
        due = datetime.fromisoformat(shelter_item["deadline"])
        assert due <= datetime.now(UTC) + timedelta(hours=1)  # was 24 h (routine)
        records = await read_topic(
            own_broker.bootstrap,
            "nrm.referrals.v1",
            until=lambda rs: any(
                dict(r.headers).get("ce_type") == b"referral.risk_changed" for r in rs
            ),
            timeout=30,
        )
        (risk,) = [
            json.loads(r.value or b"{}")
            for r in records
            if dict(r.headers).get("ce_type") == b"referral.risk_changed"
        ]
        assert risk == {"referral_id": rid3, "reference": risk["reference"], "risk_level": "high"}

        # 4. A person recuses themselves: refused from then on; their colleagues are not.
        person = {
            "Authorization": "Bearer "
            + mint.token("ngo-south", "caseworker", client_id="console", person="p-17")
        }
        r = await c["intake"].get(f"/v1/referrals/{rid3}", headers=person)
        assert r.status_code == 200
        (mine,) = (await c["notify"].get(f"/v1/inbox?referral={rid3}", headers=person)).json()[
            "items"
        ]
        r = await c["intake"].post(
            f"/v1/referrals/{rid3}/recusal", json={"reason": "knows the family"}, headers=person
        )
        assert r.status_code == 204, r.text
        r = await c["intake"].get(f"/v1/referrals/{rid3}", headers=person)
        assert r.status_code == 404
        assert (await ex.read("ngo-south", rid3)).status_code == 200

        # Notify learns of it over the bus: the person's inbox, delivery and actions are 404;
        # a colleague still has the delivery.
        async def hidden() -> bool:
            r = await c["notify"].get(f"/v1/inbox?referral={rid3}", headers=person)
            return not r.json()["items"]

        await ex.until(hidden, timeout=10)
        delivery = f"/v1/deliveries/{mine['delivery_id']}"
        assert (await c["notify"].get(delivery, headers=person)).status_code == 404
        r = await c["notify"].post(f"{delivery}/acknowledge", headers=person)
        assert r.status_code == 404, r.text
        assert (await ex.delivered(rid3, "ngo-south"))["status"] == "notified"
        r = await c["notify"].post(f"{delivery}/acknowledge", headers=ex.as_("ngo-south"))
        assert r.status_code == 200, r.text

        # The audit log has each of these on the referral's timeline.
        auditor = mint.headers("audit-office", "auditor")

        async def audited() -> bool:
            types = set()
            for referral_id in (rid, rid3):
                r = await c["audit"].get(
                    f"/v1/audit/referrals/{referral_id}/timeline", headers=auditor
                )
                types |= {(e["type"], e.get("action")) for e in r.json()["events"]}
            return {
                ("referral.implicated_changed", None),
                ("referral.risk_changed", None),
                ("admin.changed", "referral.recused"),
            } <= types

        await ex.until(audited)
        r = await c["intake"].get("/v1/referrals", headers=ex.as_("anti-corruption"))
        assert rid not in r.text  # named implicated: not in its list either
