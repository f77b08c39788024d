"""`nrm demo`: a short, realistic scenario played against a running exchange over HTTP only.

Three cases from the Kazakhstan example: a labour inspector refers a victim of labour
exploitation found in Kostanay who wants shelter but not the police; a hotline tip about
officials protecting a brothel; a 16-year-old referred by the police. It prints who was
notified at which disclosure level, the acknowledgements, an escalation after a missed
deadline (start the stack with `nrm up --demo` for short deadlines), and the audit timeline
with a verification. Every step is checked; a failed check ends the demo with exit code 1.
"""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

CONSENT = {"given_by": "self", "recorded_at": "2026-11-20T10:00:00Z", "statistics": True}
LABOUR = {
    "kind": "victim_referral",
    "external_ref": "LI-DEMO-1",
    "region": "KZ-39",  # Kostanay region
    "urgency": "high",
    "exploitation": ["labour"],
    "victim": {
        "age": 31,
        "sex": "male",
        "citizenship": "UZ",
        "languages": ["ru"],
        "needs": ["shelter", "legal"],
        "identity": {"full_name": "Demo Person One"},
        "contact": {"phone": "+77000000001", "safe_to_contact": True},
    },
    "consent": {**CONSENT, "services": True, "law_enforcement": False},
    "narrative": "Worked twelve-hour shifts on a farm; wages withheld, passport kept by the owner.",
}
TIP = {
    "kind": "tip",
    "region": "KZ-75",
    "urgency": "high",
    "exploitation": ["sexual"],
    "official_involvement": True,
    "source": "hotline",
    "narrative": "Anonymous caller: a brothel operating under the protection of local officials.",
}
MINOR = {
    "kind": "victim_referral",
    "region": "KZ-75",
    "urgency": "immediate",
    "exploitation": ["sexual"],
    "victim": {
        "age": 16,
        "sex": "female",
        "needs": ["shelter", "psychological"],
        "identity": {"full_name": "Demo Person Two"},
    },
    "consent": {
        **CONSENT,
        "services": True,
        "law_enforcement": True,
        "given_by": "guardian",
        "guardian_appointment": "Guardianship authority of Almaty, decision 17/2026",
    },
}


class DemoFailed(Exception):
    pass


class Demo:
    def __init__(self, base_url: str, credentials: Path, *, out: Callable[[str], None]) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=15)
        self.secrets: dict[str, str] = json.loads(credentials.read_text())
        self.tokens: dict[str, dict[str, str]] = {}
        self.out = out

    def as_(self, client_id: str) -> dict[str, str]:
        if client_id not in self.tokens:
            r = self.client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, self.secrets[client_id]),
            )
            self.check(r.status_code == 200, f"token for {client_id}: {r.status_code}")
            self.tokens[client_id] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return self.tokens[client_id]

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            raise DemoFailed(what)

    def wait(self, what: str, condition: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise DemoFailed(f"timed out waiting for {what}")
            time.sleep(0.2)

    def submit(self, by: str, body: dict[str, Any], title: str) -> dict[str, Any]:
        r = self.client.post(
            "/v1/referrals", json=body, headers={**self.as_(by), "Idempotency-Key": title}
        )
        self.check(r.status_code in (200, 201), f"{title}: submit answered {r.status_code}")
        referral: dict[str, Any] = r.json()
        self.out(f"\n{title}\n  {by} submitted {referral['reference']}")
        return referral

    def recipients(self, by: str, referral: dict[str, Any], expected: set[str]) -> list[Any]:
        def routed() -> list[Any] | None:
            r = self.client.get(f"/v1/referrals/{referral['id']}/status", headers=self.as_(by))
            found = r.json()["recipients"]
            return found if {x["agency"] for x in found} >= expected else None

        found: list[Any] = self.wait(f"routing of {referral['reference']}", routed)
        for x in sorted(found, key=lambda x: x["agency"]):
            self.out(
                f"  → {x['agency']:<16} {x['disclosure']:<9} rule {x['rule']:<22} "
                f"acknowledge by {x['deadline']}"
            )
        return found

    def delivery(self, agency: str, referral: dict[str, Any]) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            items = self.client.get("/v1/inbox", headers=self.as_(agency)).json()["items"]
            return next((i for i in items if i["referral_id"] == referral["id"]), None)

        item: dict[str, Any] = self.wait(f"{agency}'s inbox", found)
        return item

    def act(self, agency: str, item: dict[str, Any], action: str) -> None:
        r = self.client.post(
            f"/v1/deliveries/{item['delivery_id']}/{action}", headers=self.as_(agency)
        )
        self.check(r.status_code == 200, f"{agency} {action}: {r.status_code}")
        done = {"acknowledge": "acknowledged", "accept": "accepted"}.get(action, action)
        self.out(f"  {agency} {done} {item['reference']}")

    def run(self) -> None:
        policy = self.client.get("/v1/routing/policy", headers=self.as_("auditor")).json()
        self.out(f"Routing policy {policy['version']}; deadlines {policy['deadlines']} (seconds)")

        labour = self.submit("labour-insp", LABOUR, "1. Labour exploitation, Kostanay")
        self.recipients("labour-insp", labour, {"ngo-north", "mvd-ctu"})
        tip = self.submit("nrm-coordinator", TIP, "2. Hotline tip: officials protecting a brothel")
        self.recipients("nrm-coordinator", tip, {"mvd-ctu", "gp", "anti-corruption"})
        minor = self.submit("mvd-ctu", MINOR, "3. A 16-year-old referred by the police")
        self.recipients("mvd-ctu", minor, {"child-rights"})

        self.out("\nWhat each recipient may read of case 1")
        for agency in ("ngo-north", "mvd-ctu"):
            r = self.client.get(
                f"/v1/referrals/{labour['id']}",
                headers={**self.as_(agency), "X-Purpose": "demo: first contact"},
            )
            view = r.json()
            victim = view.get("victim") or {}
            self.out(
                f"  {agency:<10} {view['disclosure']:<9} identity: "
                f"{'shown' if victim.get('identity') else 'hidden'}, narrative: "
                f"{'shown' if view.get('narrative') else 'hidden'}"
            )
        self.check(
            self.client.get(f"/v1/referrals/{labour['id']}", headers=self.as_("gp")).status_code
            == 404,
            "an agency that was not sent case 1 must get 404",
        )
        self.out("  gp         404 (not a recipient: the referral's existence is not confirmed)")

        self.out("\nAcknowledgements")
        shelter = self.delivery("ngo-north", labour)
        self.act("ngo-north", shelter, "acknowledge")
        child = self.delivery("child-rights", minor)
        self.act("child-rights", child, "acknowledge")
        self.act("child-rights", child, "accept")

        deadline = policy["deadlines"]["high"]
        self.out(f"\nEscalation: mvd-ctu does not acknowledge case 1 (deadline {deadline} s)")
        if deadline > 120:
            self.out("  skipped: start the stack with `nrm up --demo` for short deadlines")
        else:

            def escalated() -> dict[str, Any] | None:
                items = self.client.get("/v1/inbox", headers=self.as_("nrm-coordinator")).json()[
                    "items"
                ]
                return next(
                    (
                        i
                        for i in items
                        if i["referral_id"] == labour["id"] and i["rule"] == "escalation"
                    ),
                    None,
                )

            item = self.wait("the escalation", escalated, timeout=deadline + 60)
            self.out(
                f"  deadline missed → escalated to nrm-coordinator ({item['disclosure']}, "
                f"rule {item['rule']})"
            )

        self.out(f"\nAudit timeline of {labour['reference']} (as the auditor sees it)")
        steps = self.client.get(
            f"/v1/audit/referrals/{labour['id']}/timeline", headers=self.as_("auditor")
        ).json()["events"]
        for step in steps:
            who = step.get("agency") or ""
            extra = step.get("disclosure") or step.get("reason") or step.get("channel") or ""
            self.out(
                f"  {step['sequence']:>5}  +{step['since_start_ms']:>7} ms  {step['type']:<24} "
                f"{who:<16} {extra}"
            )
        self.check(
            {"referral.submitted", "referral.routed", "referral.acknowledged"}
            <= {s["type"] for s in steps},
            "the timeline must show submission, routing and acknowledgement",
        )
        verify = self.client.get("/v1/audit/verify", headers=self.as_("auditor")).json()
        self.check(verify["ok"] is True, f"audit verification failed: {verify}")
        head = verify["head_hash"][:16]
        self.out(f"\nAudit verification: ok ({verify['records']} records, head {head}…)")
