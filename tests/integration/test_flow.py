"""One referral through intake, router, notify and audit, each with its own database, over the
real broker: the audit timeline shows every step in order with the right actors, and nothing
anywhere in the audit log identifies the victim."""

import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services import asyncapi
from services.audit.app import create_app as create_audit
from services.common.broker import EmbeddedBroker
from services.common.bus import create_producer
from services.common.crypto import Vault
from services.common.db import create_engine
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.notify.app import create_app as create_notify
from services.notify.settings import NotifySettings
from services.router.app import create_app as create_router
from services.router.settings import RouterSettings
from tests.conftest import open_database
from tests.integration.test_audit import audit_settings
from tests.support import Database, Receiver, read_topic, wait_for
from tests.tokens import AUDIENCE, ISSUER, TokenMint
from tests.unit.test_contracts import REFERRAL_EXAMPLE

CANARIES = ("Aigerim Example", "N1234567", "2002-03-14", "+77010000000", "waitress work abroad")


@contextlib.asynccontextmanager
async def stack(
    kind: str,
    broker: EmbeddedBroker,
    tmp_path: Path,
    mint: TokenMint,
    notify: dict[str, Any] | None = None,
    *,
    intake: dict[str, Any] | None = None,
    router: dict[str, Any] | None = None,
    twice: Collection[str] = (),
    databases: dict[str, Database] | None = None,
    apps: dict[str, FastAPI] | None = None,
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Intake, router, notify and audit, each with a database of its own; `notify`, `intake`
    and `router` override their settings (SMTP, webhook rules, clocks, the policy file). The
    services in `twice` run a second instance on the same database (as `<name>2`, with a pool
    of its own). `databases` and `apps`, when given, are filled with each one's."""
    common: dict[str, Any] = {
        "data_dir": tmp_path,
        "auth_issuer": ISSUER,
        "auth_audience": AUDIENCE,
        "master_keys": {"k1": Vault.generate_key()},
    }
    factories: dict[str, Callable[[Database], FastAPI]] = {
        "intake": lambda db: create_intake(
            IntakeSettings(**common, **(intake or {})),
            bootstrap=broker.bootstrap,
            engine=db.engine,
            jwks=mint.jwks,
        ),
        "router": lambda db: create_router(
            RouterSettings(**common, **(router or {})),
            bootstrap=broker.bootstrap,
            engine=db.engine,
            jwks=mint.jwks,
        ),
        "notify": lambda db: create_notify(
            NotifySettings(**common, **(notify or {})),
            bootstrap=broker.bootstrap,
            engine=db.engine,
            jwks=mint.jwks,
        ),
        "audit": lambda db: create_audit(
            audit_settings(tmp_path), bootstrap=broker.bootstrap, engine=db.engine, jwks=mint.jwks
        ),
    }
    async with contextlib.AsyncExitStack() as exits:
        clients = {}
        for name, factory in factories.items():
            folder = tmp_path / name
            folder.mkdir()
            db: Database = await exits.enter_async_context(open_database(kind, folder))
            instances = [(name, db)]
            if name in twice:
                second = create_engine(db.url, search_path=db.schema)
                exits.push_async_callback(second.dispose)
                instances.append((f"{name}2", dataclasses.replace(db, engine=second)))
            if databases is not None:
                databases[name] = db
            for instance, database in instances:
                app = factory(database)
                await exits.enter_async_context(app.router.lifespan_context(app))
                if apps is not None:
                    apps[instance] = app
                transport = httpx.ASGITransport(app=app)
                clients[instance] = await exits.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url=f"http://{instance}")
                )
        yield clients


async def test_full_flow_timeline(db: Database, own_broker: EmbeddedBroker, tmp_path: Path) -> None:
    mint = TokenMint()
    async with stack(db.kind, own_broker, tmp_path, mint) as c:
        referrer = mint.headers("labour-insp", "referrer")
        shelter = mint.headers("ngo-south", "caseworker")
        auditor = mint.headers("audit-office", "auditor")
        r = await c["intake"].post(
            "/v1/referrals",
            content=REFERRAL_EXAMPLE,
            headers={"content-type": "application/json", **referrer},
        )
        assert r.status_code == 201, r.text
        rid = r.json()["id"]

        async def delivered() -> bool:
            items = (await c["notify"].get("/v1/inbox", headers=shelter)).json()["items"]
            return any(i["referral_id"] == rid for i in items)

        await wait_for(delivered, timeout=60)

        async def readable() -> bool:
            r = await c["intake"].get(
                f"/v1/referrals/{rid}", headers={**shelter, "X-Purpose": "shelter intake"}
            )
            return r.status_code == 200

        await wait_for(readable, timeout=60)
        view = (await c["intake"].get(f"/v1/referrals/{rid}", headers=shelter)).json()
        assert view["disclosure"] == "support"
        items = (await c["notify"].get("/v1/inbox", headers=shelter)).json()["items"]
        delivery_id = next(i["delivery_id"] for i in items if i["referral_id"] == rid)
        r = await c["notify"].post(f"/v1/deliveries/{delivery_id}/acknowledge", headers=shelter)
        assert r.status_code == 200

        async def timeline() -> list[dict[str, Any]]:
            r = await c["audit"].get(f"/v1/audit/referrals/{rid}/timeline", headers=auditor)
            events: list[dict[str, Any]] = r.json()["events"]
            return events

        # Audit reads each topic separately, so the acknowledgement (case events) can be recorded
        # before the submission (referrals): wait for every step, not only the last. The
        # timeline orders them by when they happened.
        step_of: dict[str, Callable[[dict[str, Any]], bool]] = {
            "submitted": lambda e: e["type"] == "referral.submitted",
            "routed": lambda e: e["type"] == "referral.routed",
            "notified": lambda e: e["type"] == "delivery.notified" and e["agency"] == "ngo-south",
            "read": lambda e: e["type"] == "access.granted" and e["agency"] == "ngo-south",
            "acknowledged": lambda e: e["type"] == "referral.acknowledged",
        }

        async def complete() -> bool:
            events = await timeline()
            return all(any(found(e) for e in events) for found in step_of.values())

        await wait_for(complete, timeout=60)
        steps = await timeline()

        def first(predicate: Any) -> int:
            return next(i for i, e in enumerate(steps) if predicate(e))

        submitted, routed, notified, read, acknowledged = (first(p) for p in step_of.values())
        assert submitted < routed < notified < read < acknowledged
        assert steps[submitted]["agency"] == "labour-insp"
        assert steps[submitted]["source"] == "urn:nrm:local:intake"  # NRM_EVENT_SOURCE's default
        assert {(x["agency"], x["disclosure"], x["rule"]) for x in steps[routed]["recipients"]} == {
            ("ngo-south", "support", "services-shelter"),
            ("mvd-ctu", "full", "police"),
        }
        assert steps[routed]["policy_version"].startswith("sha256:")
        assert steps[read]["disclosure"] == "support"
        assert steps[read]["actor"] == "ngo-south"
        assert steps[acknowledged]["actor"] == "ngo-south"
        assert steps[acknowledged]["delivery_id"] == delivery_id
        since = [s["since_start_ms"] for s in steps]
        assert since == sorted(since) and since[0] == 0

        # The auditor sees no victim identity anywhere, and the log verifies.
        export = (await c["audit"].get("/v1/audit/export", headers=auditor)).text
        assert rid in export
        assert not [x for x in CANARIES if x in export]
        verify = (await c["audit"].get("/v1/audit/verify", headers=auditor)).json()
        assert verify["ok"] is True and verify["records"] >= len(steps)
        # Every event on the bus (audit holds them all) is one its source declared it publishes:
        # the AsyncAPI document's send operations are generated from those declarations.
        declared = {(p.service, t) for p in asyncapi.publishers() for t in p.types}
        records = [json.loads(line) for line in export.splitlines()]
        sent = {
            (r["source"].removeprefix("urn:nrm:local:"), r["type"])
            for r in records
            if r["kind"] == "record"
        }
        assert ("intake", "referral.submitted") in sent and (
            "notify",
            "referral.acknowledged",
        ) in sent
        assert sent <= declared, sent - declared


# Poison: a record on every topic that no consumer can use. Each consumer group dead-letters it
# (with where it came from and why), and referrals keep flowing past it.
POISON = [
    ("nrm.referrals.v1", b"not json at all", [("ce_type", b"referral.submitted")]),
    ("nrm.routing.v1", b'{"referral_id": 1}', [("ce_type", b"referral.routed")]),
    ("nrm.case-events.v1", b"\xff\xfe invalid utf-8", [("ce_type", b"referral.declined")]),
    ("nrm.access.v1", b'{"action": "x"}', [("ce_type", b"no.such.type")]),
]
# Each group dead-letters the poison of a type it handles and skips the others unread (by their
# `ce_type` header): notify.referrals takes none of these types, the access groups only theirs.
GROUPS = {
    "nrm.referrals.v1": {"router.referrals", "audit"},
    "nrm.routing.v1": {"intake.routing", "notify.routing", "audit"},
    "nrm.case-events.v1": {"intake.case-events", "router.case-events", "audit"},
    "nrm.access.v1": {"audit"},
}


async def test_poison_on_every_topic_is_dead_lettered_and_flow_continues(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    mint = TokenMint()
    async with stack(db.kind, own_broker, tmp_path, mint) as c:
        producer = create_producer(own_broker.bootstrap)
        await producer.start()
        try:
            for topic, value, headers in POISON:
                await producer.send_and_wait(topic, value, key=b"poison", headers=headers)
        finally:
            await producer.stop()
        referrer = mint.headers("labour-insp", "referrer")
        r = await c["intake"].post(
            "/v1/referrals",
            content=REFERRAL_EXAMPLE,
            headers={"content-type": "application/json", **referrer},
        )
        rid = r.json()["id"]
        shelter = mint.headers("ngo-south", "caseworker")

        async def delivered() -> bool:
            items = (await c["notify"].get("/v1/inbox", headers=shelter)).json()["items"]
            return any(i["referral_id"] == rid for i in items)

        await wait_for(delivered, timeout=60)

        def dead(records: list[Any]) -> set[tuple[str, str]]:
            found = set()
            for record in records:
                h = dict(record.headers)
                if record.key == b"poison":
                    found.add((h["dlq_topic"].decode(), h["dlq_consumer"].decode()))
            return found

        expected = {(topic, group) for topic, groups in GROUPS.items() for group in groups}
        records = await read_topic(
            own_broker.bootstrap,
            "nrm.deadletter.v1",
            until=lambda rs: dead(rs) >= expected,
            timeout=60,
        )
        assert dead(records) == expected
        for record in records:
            h = dict(record.headers)
            assert h["dlq_error"] and h["dlq_offset"].isdigit()
        # The audit chain holds the referral and not the poison, and still verifies.
        auditor = mint.headers("audit-office", "auditor")
        verify = (await c["audit"].get("/v1/audit/verify", headers=auditor)).json()
        assert verify["ok"] is True


async def test_identity_canaries_never_leave_intake(
    db: Database,
    own_broker: EmbeddedBroker,
    tmp_path: Path,
    mailbox: Any,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unique strings in identity, contact, narrative and the investigation number appear in no
    Kafka record, log line, audit record, inbox item, stream event, webhook body or e-mail; the
    number is shown to `full` readers only."""
    box, smtp_port = mailbox
    await receiver.start()
    canaries = [f"canary-{uuid.uuid4().hex}" for _ in range(6)]
    body = json.loads(REFERRAL_EXAMPLE)
    body["victim"]["identity"] = {"full_name": canaries[0], "document_number": canaries[1][:60]}
    body["victim"]["contact"] = {"email": f"{canaries[2]}@example.org", "address": canaries[3]}
    body["narrative"] = canaries[4]
    body["external_ref"] = canaries[4][:60]
    caplog.set_level(logging.DEBUG)
    mint = TokenMint()
    overrides = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "webhook_allowed_schemes": ["http"],
        "webhook_allow_private": True,
    }
    async with stack(db.kind, own_broker, tmp_path, mint, notify=overrides) as c:
        admin = mint.headers("admin", "admin")
        r = await c["notify"].put(
            "/v1/agencies/ngo-south/webhook", json={"url": receiver.url}, headers=admin
        )
        assert r.status_code == 200
        await c["notify"].put(
            "/v1/agencies/ngo-south/email",
            json={"addresses": ["duty@ngo-south.example"], "language": "kk"},
            headers=admin,
        )
        r = await c["intake"].post(
            "/v1/referrals",
            json=body,
            headers={**mint.headers("labour-insp", "referrer"), "X-Purpose": "intake"},
        )
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        shelter = mint.headers("ngo-south", "caseworker")

        async def notified() -> bool:
            return bool(receiver.received) and bool(box.messages)

        await wait_for(notified, timeout=60)
        # The shelter reads it at `support` (identity shown, by design, over the API), and the
        # read is audited.
        view = (await c["intake"].get(f"/v1/referrals/{rid}", headers=shelter)).json()
        assert view["victim"]["identity"]["full_name"] == canaries[0]
        auditor = mint.headers("audit-office", "auditor")

        async def audited() -> bool:
            r = await c["audit"].get(f"/v1/audit/referrals/{rid}/timeline", headers=auditor)
            return "access.granted" in {e["type"] for e in r.json()["events"]}

        await wait_for(audited, timeout=60)

        # The police (at `full`) record that an investigation was opened, with its number.
        opened = {"opened": True, "date": datetime.now(UTC).date().isoformat()}
        for agency in ("labour-insp", "ngo-south"):  # the submitter and the shelter may not
            r = await c["intake"].post(
                f"/v1/referrals/{rid}/investigation",
                json={**opened, "number": canaries[5]},
                headers=mint.headers(agency, "caseworker"),
            )
            assert r.status_code == 404, (agency, r.text)
        police = mint.headers("mvd-ctu", "caseworker")
        r = await c["intake"].post(
            f"/v1/referrals/{rid}/investigation",
            json={**opened, "number": canaries[5]},
            headers=police,
        )
        assert r.status_code == 200, r.text
        assert r.json() == {**opened, "agency": "mvd-ctu"}
        seen = (await c["intake"].get(f"/v1/referrals/{rid}", headers=police)).json()
        assert seen["disclosure"] == "full"
        assert seen["investigation"] == {**opened, "agency": "mvd-ctu", "number": canaries[5]}
        seen = (await c["intake"].get(f"/v1/referrals/{rid}", headers=shelter)).json()
        assert seen["investigation"] == {**opened, "agency": "mvd-ctu"}  # support: no number
        r = await c["intake"].get(
            f"/v1/referrals/{rid}/status", headers=mint.headers("labour-insp", "referrer")
        )
        assert r.json()["investigation"] == {**opened, "agency": "mvd-ctu"}

        async def investigation_told() -> bool:
            hooks = " ".join(b.decode() for _, b in receiver.received)
            r = await c["audit"].get(f"/v1/audit/referrals/{rid}/timeline", headers=auditor)
            types = {e["type"] for e in r.json()["events"]}
            return "referral.investigation_recorded" in hooks and (
                "referral.investigation_recorded" in types
            )

        await wait_for(investigation_told, timeout=60)
        inbox = (await c["notify"].get("/v1/inbox", headers=shelter)).text
        export = (await c["audit"].get("/v1/audit/export", headers=auditor)).text
    records = []
    for topic in ("nrm.referrals.v1", "nrm.routing.v1", "nrm.case-events.v1", "nrm.access.v1"):
        records += await read_topic(own_broker.bootstrap, topic, until=bool, timeout=30)
    places = {
        "kafka": b" ".join(
            (r.value or b"") + b" " + b" ".join(v for _, v in r.headers) for r in records
        ).decode(errors="replace"),
        "logs": " ".join(str(r.__dict__) for r in caplog.records),
        "audit export": export,
        "inbox": inbox,
        "webhooks": " ".join(b.decode() for _, b in receiver.received),
        "e-mail": " ".join(m.as_string() for m in box.messages),
    }
    assert rid in places["audit export"] and rid in places["kafka"]  # they were really looked at
    leaks = [(where, c) for where, text in places.items() for c in canaries if c[:40] in text]
    assert not leaks
