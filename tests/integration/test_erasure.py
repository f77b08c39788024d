"""Retention and erasure (issue 23) through the real broker: legal holds, erasure requested by
the national coordinator's supervisor and approved by a `dpo` (crypto-shredding), the erasure
ledger replayed on a restored backup, the retention sweep with its clock moved by
configuration, and subject access with the accesses read from the audit service."""

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from services.common.broker import EmbeddedBroker
from services.common.crypto import Sealed, SealError, Vault
from services.common.erasure import ErasureLedger
from services.common.retention import add_years
from services.intake.app import create_app
from services.intake.models import (
    Identification,
    Investigation,
    Recipient,
    Referral,
)
from services.intake.settings import IntakeSettings
from services.router.settings import EXAMPLE_POLICY
from tests.integration.test_flow import stack
from tests.support import Database, outbox_payloads, wait_for
from tests.tokens import AUDIENCE, ISSUER, TokenMint
from tests.unit.test_contracts import REFERRAL_EXAMPLE

PROBLEM = "application/problem+json"
CANARIES = (b"Aigerim Example", b"N1234567", b"2002-03-14", b"+77010000000", b"waitress work")
NARRATIVE = "Recruited online with a promise of waitress work abroad; passport taken on arrival."
JSON = {"content-type": "application/json"}


def raw_files(folder: Path) -> bytes:
    """Every byte of a SQLite database: the file and its write-ahead log."""
    return b"".join(
        p.read_bytes() for p in (folder / "service.db", folder / "service.db-wal") if p.exists()
    )


async def blobs(db: Database) -> list[tuple[bytes, bytes, str]]:
    """Every (ciphertext, wrapped key, master key id) left in intake's database."""
    async with db.sessions() as session:
        found = list(
            await session.exec(
                select(Referral.sealed, Referral.wrapped_key, Referral.master_key_id)
            )
        )
        found += list(
            await session.exec(
                select(
                    Investigation.sealed,
                    Investigation.wrapped_key,
                    Investigation.master_key_id,
                )
            )
        )
    return [(bytes(a), bytes(b), c) for a, b, c in found]


async def sealed_of(db: Database, referral_id: str) -> tuple[Sealed, Sealed]:
    async with db.sessions() as session:
        row = await session.get(Referral, referral_id)
        inv = await session.get(Investigation, referral_id)
        assert row is not None and inv is not None
        return (
            Sealed(row.sealed, row.wrapped_key, row.master_key_id),
            Sealed(inv.sealed, inv.wrapped_key, inv.master_key_id),
        )


def assert_unreadable(
    vault: Vault, referral_id: str, before: tuple[Sealed, Sealed], left: list[Any]
) -> None:
    """Nothing left opens the referral's ciphertexts (as they were before the erasure) or
    anything else under its associated data, whatever the master key."""
    for old, record in zip(before, (referral_id, f"{referral_id}/investigation"), strict=True):
        for ciphertext, wrapped, key_id in left:
            for attempt in (
                Sealed(old.ciphertext, wrapped, key_id),
                Sealed(ciphertext, wrapped, key_id),
            ):
                with pytest.raises(SealError):
                    vault.open(attempt, record_id=record)


async def test_holds_erasure_and_subject_access(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    mint = TokenMint()
    databases: dict[str, Database] = {}
    apps: dict[str, FastAPI] = {}
    async with stack(db.kind, own_broker, tmp_path, mint, databases=databases, apps=apps) as c:
        intake, audit_app = apps["intake"], apps["audit"]
        # Intake reads audit over HTTP; here audit is served in-process.
        await intake.state.audit_http.aclose()
        intake.state.audit_http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=audit_app), base_url="http://audit"
        )
        submitter = mint.headers("labour-insp", "referrer")
        shelter = mint.headers("ngo-south", "caseworker")
        police = mint.headers("mvd-ctu", "caseworker")
        coordinator = mint.headers("nrm-coordinator", "supervisor")
        dpo = mint.headers("dpo", "dpo")
        auditor = mint.headers("audit-office", "auditor")

        r = await c["intake"].post(
            "/v1/referrals", content=REFERRAL_EXAMPLE, headers={**JSON, **submitter}
        )
        assert r.status_code == 201, r.text
        rid, reference = r.json()["id"], r.json()["reference"]

        async def status() -> dict[str, Any]:
            r = await c["intake"].get(f"/v1/referrals/{rid}/status", headers=submitter)
            assert r.status_code == 200, r.text
            found: dict[str, Any] = r.json()
            return found

        async def notified() -> bool:
            recipients = (await status())["recipients"]
            return [(x["agency"], x["status"]) for x in recipients] == [
                ("mvd-ctu", "notified"),
                ("ngo-south", "notified"),
            ]

        await wait_for(notified, timeout=60)

        # A legal hold needs an open investigation.
        r = await c["intake"].post(f"/v1/referrals/{rid}/hold", headers=police)
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == (
            "No investigation is open on this referral: a legal hold needs one."
        )
        today = datetime.now(UTC).date().isoformat()
        r = await c["intake"].post(
            f"/v1/referrals/{rid}/investigation",
            json={"opened": True, "date": today, "number": "123/2026"},
            headers=police,
        )
        assert r.status_code == 200, r.text
        r = await c["intake"].post(f"/v1/referrals/{rid}/hold", headers=police)
        assert r.status_code == 200, r.text
        placed_at = r.json()["holds"][0]["placed_at"]
        assert r.json() == {
            "id": rid,
            "reference": reference,
            "holds": [{"agency": "mvd-ctu", "placed_at": placed_at}],
        }
        assert (await status())["holds"] == [{"agency": "mvd-ctu", "placed_at": placed_at}]

        # Two reads: the shelter's, with its purpose, and a stranger's, refused.
        r = await c["intake"].get(
            f"/v1/referrals/{rid}", headers={**shelter, "X-Purpose": "shelter intake"}
        )
        assert r.status_code == 200 and r.json()["disclosure"] == "support"
        r = await c["intake"].get(
            f"/v1/referrals/{rid}", headers=mint.headers("ngo-north", "caseworker")
        )
        assert r.status_code == 404

        async def accesses_recorded() -> bool:
            r = await c["audit"].get(
                "/v1/audit/events",
                params=[("referral", rid), ("type", "access.granted"), ("type", "access.denied")],
                headers=auditor,
            )
            return len(r.json()["items"]) == 2

        await wait_for(accesses_recorded, timeout=60)

        # Subject access: the dpo only; everything held, the recipients, every access.
        r = await c["intake"].get(f"/v1/referrals/{rid}/subject-access", headers=coordinator)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        r = await c["intake"].get(
            f"/v1/referrals/{rid}/subject-access",
            headers={**dpo, "X-Purpose": "request of the victim's lawyer"},
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        doc = r.json()
        assert list(doc) == [
            "document",
            "referral_id",
            "reference",
            "produced_at",
            "produced_by",
            "data",
            "recipients",
            "holds",
            "erasure_requested",
            "accesses",
        ]
        assert (doc["document"], doc["referral_id"], doc["reference"], doc["produced_by"]) == (
            "subject_access",
            rid,
            reference,
            "dpo",
        )
        data = doc["data"]
        assert data["disclosure"] == "full"
        assert data["victim"]["identity"] == {
            "full_name": "Aigerim Example",
            "date_of_birth": "2002-03-14",
            "document_number": "N1234567",
        }
        assert data["victim"]["contact"] == {
            "phone": "+77010000000",
            "email": None,
            "address": None,
            "address_shared_with": [],
            "safe_to_contact": True,
        }
        assert data["narrative"] == NARRATIVE
        assert data["external_ref"] == "LI-2026-0042"
        assert data["investigation"] == {
            "opened": True,
            "date": today,
            "agency": "mvd-ctu",
            "number": "123/2026",
        }
        assert doc["recipients"] == [
            {"agency": "mvd-ctu", "disclosure": "full", "status": "notified", "rule": "police"},
            {
                "agency": "ngo-south",
                "disclosure": "support",
                "status": "notified",
                "rule": "services-shelter",
            },
        ]
        # The document's times are RFC 3339 with `+00:00`, like the referral's own.
        assert doc["holds"] == [
            {"agency": "mvd-ctu", "placed_at": placed_at.replace("Z", "+00:00")}
        ]
        assert doc["erasure_requested"] is None
        assert [{k: v for k, v in a.items() if k != "time"} for a in doc["accesses"]] == [
            {
                "outcome": "granted",
                "agency": "ngo-south",
                "actor": "ngo-south",
                "action": "referral.read",
                "disclosure": "support",
                # The audit log keeps a purpose's fingerprint only (free text might name someone).
                "purpose": {"sha256": sha256(b"shelter intake").hexdigest(), "length": 14},
            },
            {
                "outcome": "denied",
                "agency": "ngo-north",
                "actor": "ngo-north",
                "action": "referral.read",
                "disclosure": None,
                "purpose": None,
            },
        ]
        # The printable forms.
        r = await c["intake"].get(
            f"/v1/referrals/{rid}/subject-access", headers={**dpo, "Accept": "text/html"}
        )
        assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
        assert f"<h1>Subject access: referral {reference}</h1>" in r.text
        name = '<th scope="row">Victim &gt; identity &gt; full name</th><td>Aigerim Example</td>'
        assert name in r.text
        assert (
            "<tr><td>ngo-south</td><td>support</td><td>notified</td><td>services-shelter</td></tr>"
            in r.text
        )
        r = await c["intake"].get(
            f"/v1/referrals/{rid}/subject-access", headers={**dpo, "Accept": "text/markdown"}
        )
        assert r.headers["content-type"] == "text/markdown; charset=utf-8"
        assert "| Victim > identity > document number | N1234567 |" in r.text
        purpose = f"sha256:{sha256(b'shelter intake').hexdigest()} (14 characters)"
        read = f"| granted | ngo-south | ngo-south | read the referral | support | {purpose} |"
        assert read in r.text

        # The subject-access read is itself audited, the dpo as actor.
        async def dpo_read_recorded() -> bool:
            r = await c["audit"].get(
                "/v1/audit/events",
                params={"referral": rid, "type": "access.granted", "actor": "dpo"},
                headers=auditor,
            )
            lawyer = {"sha256": sha256(b"request of the victim's lawyer").hexdigest(), "length": 30}
            found = [(i["payload"]["action"], i["payload"]["purpose"]) for i in r.json()["items"]]
            return found[:1] == [("subject_access.read", lawyer)]

        await wait_for(dpo_read_recorded, timeout=60)

        # Holds: law enforcement or a prosecutor the referral was sent to, nobody else.
        r = await c["intake"].post(f"/v1/referrals/{rid}/hold", headers=shelter)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        r = await c["intake"].post(
            f"/v1/referrals/{rid}/hold", headers=mint.headers("gp", "caseworker")
        )
        assert r.status_code == 404

        # Erasure is asked by the national coordinator's supervisor only, and refused on hold.
        for headers in (
            mint.headers("mvd-ctu", "supervisor"),
            mint.headers("nrm-coordinator", "caseworker"),
            dpo,
        ):
            r = await c["intake"].post(
                f"/v1/referrals/{rid}/erasure", json={"basis": "victim_request"}, headers=headers
            )
            assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        r = await c["intake"].post(
            f"/v1/referrals/{rid}/erasure", json={"basis": "victim_request"}, headers=coordinator
        )
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == (
            "A legal hold stands on this referral (placed by mvd-ctu): nothing is erased until "
            "it is lifted."
        )
        assert r.json()["holds"] == ["mvd-ctu"]
        r = await c["intake"].post(
            f"/v1/referrals/{rid}/erasure", json={"basis": "because"}, headers=coordinator
        )
        assert r.status_code == 422

        # Lifted by the agency that placed it; once.
        r = await c["intake"].delete(f"/v1/referrals/{rid}/hold", headers=police)
        assert r.status_code == 204
        r = await c["intake"].delete(f"/v1/referrals/{rid}/hold", headers=police)
        assert r.status_code == 409
        assert r.json()["detail"] == "Your agency has placed no legal hold on this referral."
        assert (await status())["holds"] == []
        holds = await outbox_payloads(databases["intake"], "referral.hold_changed")
        assert [(h["agency"], h["held"]) for h in holds] == [("mvd-ctu", True), ("mvd-ctu", False)]

        # Requested: pending until a dpo approves; nothing is erased before.
        r = await c["intake"].post(
            f"/v1/referrals/{rid}/erasure", json={"basis": "victim_request"}, headers=coordinator
        )
        assert r.status_code == 202, r.text
        requested_at = r.json()["requested_at"]
        assert r.json() == {
            "id": rid,
            "status": "erasure_requested",
            "basis": "victim_request",
            "requested_by": "nrm-coordinator",
            "requested_at": requested_at,
            "erased_at": None,
        }
        requested = await outbox_payloads(databases["intake"], "referral.erasure_requested")
        assert requested == [
            {
                "referral_id": rid,
                "reference": reference,
                "basis": "victim_request",
                "requested_by": "nrm-coordinator",
            }
        ]
        r = await c["intake"].post(
            f"/v1/referrals/{rid}/erasure", json={"basis": "court_order"}, headers=coordinator
        )
        assert r.status_code == 409
        assert r.json()["detail"] == (
            "An erasure on the basis `victim_request` is already pending: cancel it first."
        )
        # Approval: not by the coordinator's supervisor (no such action: 404), not by the
        # person who asked even holding the dpo role (409).
        r = await c["intake"].post(f"/v1/referrals/{rid}/erasure/approve", headers=coordinator)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        both = mint.headers("nrm-coordinator", "supervisor", "dpo")
        r = await c["intake"].post(f"/v1/referrals/{rid}/erasure/approve", headers=both)
        assert r.status_code == 409
        assert r.json()["detail"] == (
            "The erasure must be approved by someone other than who requested it."
        )
        # A hold placed while the request waits stops the approval.
        r = await c["intake"].post(f"/v1/referrals/{rid}/hold", headers=police)
        assert r.status_code == 200
        r = await c["intake"].post(f"/v1/referrals/{rid}/erasure/approve", headers=dpo)
        assert r.status_code == 409 and "A legal hold stands" in r.json()["detail"]
        # The pending list says so; the holds are read by the police and the coordinator's
        # supervisor (who asks for erasures), not by the shelter.
        r = await c["intake"].get("/v1/retention/erasures", headers=dpo)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "items": [
                {
                    "referral_id": rid,
                    "reference": reference,
                    "basis": "victim_request",
                    "requested_at": requested_at,
                    "requested_by": "nrm-coordinator",
                    "requested_by_actor": "nrm-coordinator",
                    "held": True,
                }
            ],
            "next_cursor": None,
        }
        for headers in (police, coordinator):
            r = await c["intake"].get(f"/v1/referrals/{rid}/hold", headers=headers)
            assert r.status_code == 200, r.text
            assert [h["agency"] for h in r.json()["holds"]] == ["mvd-ctu"]
            assert (r.json()["id"], r.json()["reference"]) == (rid, reference)
        for headers in (shelter, dpo, mint.headers("gp", "caseworker")):
            r = await c["intake"].get(f"/v1/referrals/{rid}/hold", headers=headers)
            assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        assert (
            await c["intake"].delete(f"/v1/referrals/{rid}/hold", headers=police)
        ).status_code == 204
        # Refused by the dpo: nothing pending any more.
        r = await c["intake"].delete(f"/v1/referrals/{rid}/erasure", headers=dpo)
        assert r.status_code == 204
        r = await c["intake"].post(f"/v1/referrals/{rid}/erasure/approve", headers=dpo)
        assert r.status_code == 409
        assert r.json()["detail"] == "No erasure of this referral is pending."
        # Still all there.
        r = await c["intake"].get(f"/v1/referrals/{rid}", headers=submitter)
        assert (
            r.status_code == 200
            and r.json()["victim"]["identity"]["full_name"] == "Aigerim Example"
        )
        assert await outbox_payloads(databases["intake"], "referral.erased") == []

        before = await sealed_of(databases["intake"], rid)
        r = await c["intake"].post(
            f"/v1/referrals/{rid}/erasure", json={"basis": "victim_request"}, headers=coordinator
        )
        assert r.status_code == 202
        r = await c["intake"].post(f"/v1/referrals/{rid}/erasure/approve", headers=dpo)
        assert r.status_code == 200, r.text
        erased_at = r.json()["erased_at"]
        assert r.json() == {
            "id": rid,
            "status": "erased",
            "basis": "victim_request",
            "requested_by": None,
            "requested_at": None,
            "erased_at": erased_at,
        }

        # Every read, by anyone: 404; the dpo learns it was erased (410).
        not_found = {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "No such referral.",
            "instance": f"/v1/referrals/{rid}",
        }
        for headers in (
            submitter,
            shelter,
            police,
            coordinator,
            mint.headers("labour-insp", "supervisor"),
        ):
            r = await c["intake"].get(f"/v1/referrals/{rid}", headers=headers)
            assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
            assert r.json() == not_found
        r = await c["intake"].get(f"/v1/referrals/{rid}/status", headers=submitter)
        assert r.status_code == 404
        listed = (await c["intake"].get("/v1/referrals", headers=submitter)).json()["items"]
        assert rid not in [i["id"] for i in listed]
        listed = (await c["intake"].get("/v1/referrals", headers=shelter)).json()["items"]
        assert rid not in [i["id"] for i in listed]
        actions: list[tuple[str, str, dict[str, str], Any]] = [
            ("PUT", "consent", submitter, json.loads(REFERRAL_EXAMPLE)["consent"]),
            ("POST", "withdraw", submitter, None),
            ("POST", "investigation", police, {"opened": True, "date": today}),
            ("POST", "hold", police, None),
            (
                "POST",
                "identification",
                mint.headers("mvd-ctu", "supervisor"),
                {"decision": "reasonable_grounds", "decided_at": datetime.now(UTC).isoformat()},
            ),
        ]
        for method, action, headers, body in actions:
            r = await c["intake"].request(
                method, f"/v1/referrals/{rid}/{action}", json=body, headers=headers
            )
            assert r.status_code == 404, (action, r.text)
        r = await c["intake"].get(f"/v1/referrals/{rid}/subject-access", headers=dpo)
        assert r.status_code == 410 and r.headers["content-type"] == PROBLEM
        assert r.json() == {
            "type": "about:blank",
            "title": "Gone",
            "status": 410,
            "detail": "The referral was erased: intake holds nothing of it.",
            "instance": f"/v1/referrals/{rid}/subject-access",
            "referral_status": "erased",
            "basis": "victim_request",
            "erased_at": erased_at.replace("Z", "+00:00"),
        }
        r = await c["intake"].post(
            f"/v1/referrals/{rid}/erasure", json={"basis": "victim_request"}, headers=coordinator
        )
        assert r.status_code == 409 and r.json()["detail"] == "The referral was already erased."

        # `referral.erased` carries the basis code only.
        assert await outbox_payloads(databases["intake"], "referral.erased") == [
            {"referral_id": rid, "basis": "victim_request"}
        ]
        ledger = ErasureLedger(tmp_path / "intake-erasure-ledger.jsonl")
        assert [(e.referral_id, e.basis) for e in ledger.entries()] == [(rid, "victim_request")]

        # What is left of it: id, reference, kind, status, basis and time.
        async with databases["intake"].sessions() as session:
            row = await session.get(Referral, rid)
            assert row is not None
            assert (row.reference, row.kind, row.status, row.erasure_basis) == (
                reference,
                "victim_referral",
                "erased",
                "victim_request",
            )
            assert (row.sealed, row.wrapped_key, row.facts, row.profile, row.consent) == (
                b"",
                b"",
                {},
                {},
                None,
            )
            assert (row.submitted_by, row.region, row.external_ref, row.majority_on) == (
                "",
                "",
                None,
                None,
            )
            for table in (Investigation, Identification, Recipient):
                left = await session.exec(select(table).where(col(table.referral_id) == rid))
                assert list(left) == [], table
        # No key left opens anything of it, and the files hold neither the canaries nor the
        # old keys and ciphertexts.
        vault: Vault = intake.state.vault
        assert_unreadable(vault, rid, before, await blobs(databases["intake"]))
        if db.kind == "sqlite":
            raw = raw_files(tmp_path / "intake")
            for secret in (*CANARIES, *(x for s in before for x in (s.ciphertext, s.wrapped_key))):
                assert secret not in raw


# A backup here is a copy of the database file: SQLite's (PostgreSQL's restore is the same
# replay of the ledger, tested through `nrm up` on the embedded default in tests/e2e).
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
async def test_a_backup_restored_after_erasure_is_shredded_again_on_start(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Stop intake, put back a copy of its database taken before the erasure, start it: the
    ledger (kept apart from the database) shreds the referral again before anything is served."""
    mint = TokenMint()
    settings = IntakeSettings(
        data_dir=tmp_path,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        master_keys={"k1": Vault.generate_key()},
    )
    folder = Path(db.url.split("///", 1)[1]).parent
    submitter = mint.headers("labour-insp", "referrer")

    async def running() -> Any:
        app = create_app(settings, bootstrap=own_broker.bootstrap, engine=db.engine, jwks=mint.jwks)
        return app, app.router.lifespan_context(app)

    app, life = await running()
    async with life:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake")
        r = await client.post(
            "/v1/referrals", content=REFERRAL_EXAMPLE, headers={**JSON, **submitter}
        )
        rid = r.json()["id"]
        keep = await client.post(
            "/v1/referrals", content=REFERRAL_EXAMPLE, headers={**JSON, **submitter}
        )
        kept = keep.json()["id"]
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(folder / "service.db", tmp_path / "backup.db")
        async with db.sessions() as session:
            row = await session.get(Referral, rid)
            assert row is not None
            old_key = row.wrapped_key
        coordinator = mint.headers("nrm-coordinator", "supervisor")
        r = await client.post(
            f"/v1/referrals/{rid}/erasure", json={"basis": "court_order"}, headers=coordinator
        )
        assert r.status_code == 202
        r = await client.post(
            f"/v1/referrals/{rid}/erasure/approve", headers=mint.headers("dpo", "dpo")
        )
        assert r.status_code == 200
        await client.aclose()
    await db.engine.dispose()
    # The restore: the old file back, no write-ahead log of the newer one.
    for name in ("service.db-wal", "service.db-shm"):
        (folder / name).unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.db", folder / "service.db")
    async with db.sessions() as session:
        row = await session.get(Referral, rid)
        assert row is not None and row.status == "submitted" and row.wrapped_key == old_key
    await db.engine.dispose()

    app, life = await running()
    async with life:
        assert app.state.replayed_erasures == 1
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake")
        r = await client.get(f"/v1/referrals/{rid}", headers=submitter)
        assert r.status_code == 404
        r = await client.get(f"/v1/referrals/{kept}", headers=submitter)
        assert (
            r.status_code == 200
            and r.json()["victim"]["identity"]["full_name"] == "Aigerim Example"
        )
        await client.aclose()
        erased = await outbox_payloads(db, "referral.erased")
        assert erased == [{"referral_id": rid, "basis": "court_order"}]  # again, on the restored DB
    await db.engine.dispose()
    assert old_key not in raw_files(folder)
    # A second start finds nothing left to do.
    app, life = await running()
    async with life:
        assert app.state.replayed_erasures == 0


async def test_pending_erasures_listed_for_the_dpo_and_the_coordinators_supervisor(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """`GET /v1/retention/erasures`: the requests waiting for a `dpo`, a page at a time (oldest
    referral first), or one referral's; nobody else learns of them (404)."""
    mint = TokenMint()
    settings = IntakeSettings(
        data_dir=tmp_path,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        master_keys={"k1": Vault.generate_key()},
    )
    app = create_app(settings, bootstrap=own_broker.bootstrap, engine=db.engine, jwks=mint.jwks)
    submitter = mint.headers("labour-insp", "referrer")
    coordinator = mint.headers("nrm-coordinator", "supervisor")
    dpo = mint.headers("dpo", "dpo")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as c,
    ):
        submitted = []
        for _ in range(3):
            r = await c.post(
                "/v1/referrals", content=REFERRAL_EXAMPLE, headers={**JSON, **submitter}
            )
            assert r.status_code == 201, r.text
            submitted.append((r.json()["id"], r.json()["reference"]))
        (first, first_ref), (second, _), (third, third_ref) = sorted(submitted)

        r = await c.get("/v1/retention/erasures", headers=dpo)
        assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
        requested_at = {}
        for rid, basis in ((third, "court_order"), (first, "victim_request")):
            r = await c.post(
                f"/v1/referrals/{rid}/erasure", json={"basis": basis}, headers=coordinator
            )
            assert r.status_code == 202, r.text
            requested_at[rid] = r.json()["requested_at"]

        def item(rid: str, reference: str, basis: str) -> dict[str, Any]:
            return {
                "referral_id": rid,
                "reference": reference,
                "basis": basis,
                "requested_at": requested_at[rid],
                "requested_by": "nrm-coordinator",
                "requested_by_actor": "nrm-coordinator",
                "held": False,
            }

        r = await c.get("/v1/retention/erasures", params={"limit": 1}, headers=dpo)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == [item(first, first_ref, "victim_request")]
        cursor = r.json()["next_cursor"]  # opaque (services.common.pagination)
        r = await c.get(
            "/v1/retention/erasures", params={"limit": 1, "cursor": cursor}, headers=coordinator
        )
        assert r.json() == {"items": [item(third, third_ref, "court_order")], "next_cursor": None}
        r = await c.get("/v1/retention/erasures", params={"referral": third}, headers=coordinator)
        assert r.json() == {"items": [item(third, third_ref, "court_order")], "next_cursor": None}
        r = await c.get("/v1/retention/erasures", params={"referral": second}, headers=dpo)
        assert r.json() == {"items": [], "next_cursor": None}
        r = await c.get("/v1/retention/erasures", params={"cursor": "NRM-2026"}, headers=dpo)
        assert r.status_code == 422

        # Anyone else: 404, as for a path that does not exist.
        for headers in (
            mint.headers("mvd-ctu", "supervisor"),
            mint.headers("nrm-coordinator", "caseworker"),
            submitter,
            mint.headers("audit-office", "auditor"),
            mint.headers("stats", "analyst"),
        ):
            r = await c.get("/v1/retention/erasures", headers=headers)
            assert r.status_code == 404 and r.headers["content-type"] == PROBLEM

        # Refused by the dpo, approved: gone from the list either way.
        assert (await c.delete(f"/v1/referrals/{first}/erasure", headers=dpo)).status_code == 204
        r = await c.get("/v1/retention/erasures", headers=dpo)
        assert r.json() == {"items": [item(third, third_ref, "court_order")], "next_cursor": None}
        r = await c.post(f"/v1/referrals/{third}/erasure/approve", headers=dpo)
        assert r.status_code == 200, r.text
        r = await c.get("/v1/retention/erasures", headers=dpo)
        assert r.json() == {"items": [], "next_cursor": None}

        # The holds: the coordinator's supervisor reads them on any referral not erased.
        r = await c.get(f"/v1/referrals/{second}/hold", headers=coordinator)
        assert r.status_code == 200
        assert r.json() == {
            "id": second,
            "reference": dict(submitted)[second],
            "holds": [],
        }
        r = await c.get(f"/v1/referrals/{third}/hold", headers=coordinator)
        assert r.status_code == 404


def retention_policy(folder: Path) -> Path:
    """The example policy with no-reasonable-grounds kept 2 years (withdrawn: 1 year)."""
    text_ = EXAMPLE_POLICY.read_text()
    assert "  no_reasonable_grounds: 1y\n" in text_
    folder.mkdir()
    shutil.copy(EXAMPLE_POLICY.parent / "agencies.yaml", folder / "agencies.yaml")
    path = folder / "routing.yaml"
    path.write_text(text_.replace("  no_reasonable_grounds: 1y\n", "  no_reasonable_grounds: 2y\n"))
    return path


async def test_retention_sweep_with_the_clock_moved(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """400 days on: a withdrawn adult's referral (1 year) is erased; a no-reasonable-grounds one
    (2 years), a withdrawn one on legal hold, and a withdrawn minor's (majority + 3 years) are
    not; a referral still open is not even listed. Lifting the hold lets the next sweep erase."""
    mint = TokenMint()
    policy = retention_policy(tmp_path / "config")
    apps: dict[str, FastAPI] = {}
    databases: dict[str, Database] = {}
    async with stack(
        db.kind,
        own_broker,
        tmp_path,
        mint,
        intake={
            "policy_file": policy,
            "retention_clock_offset_days": 400,
            "retention_sweep_seconds": 3600,
        },
        router={"policy_file": policy},
        apps=apps,
        databases=databases,
    ) as c:
        submitter = mint.headers("labour-insp", "referrer")
        police = mint.headers("mvd-ctu", "caseworker")
        authority = mint.headers("mvd-ctu", "supervisor")
        coordinator = mint.headers("nrm-coordinator", "supervisor")
        today = datetime.now(UTC).date()
        born = date(today.year - 15, 1, 15)  # 15 this year (or 14 until 15 January)
        minor_body = json.loads(REFERRAL_EXAMPLE)
        del minor_body["victim"]["age"]
        minor_body["victim"]["identity"]["date_of_birth"] = born.isoformat()

        async def submit(body: str) -> tuple[str, str]:
            r = await c["intake"].post("/v1/referrals", content=body, headers={**JSON, **submitter})
            assert r.status_code == 201, r.text
            return r.json()["id"], r.json()["reference"]

        due, grounds, held, minor, open_ = [
            await submit(b)
            for b in (
                REFERRAL_EXAMPLE,
                REFERRAL_EXAMPLE,
                REFERRAL_EXAMPLE,
                json.dumps(minor_body),
                REFERRAL_EXAMPLE,
            )
        ]

        async def routed() -> bool:
            for rid, _ in (due, grounds, held, minor, open_):
                r = await c["intake"].get(f"/v1/referrals/{rid}/status", headers=submitter)
                if r.json()["identification"] is None or "mvd-ctu" not in [
                    x["agency"] for x in r.json()["recipients"]
                ]:
                    return False
            return True

        await wait_for(routed, timeout=60)
        r = await c["intake"].post(
            f"/v1/referrals/{grounds[0]}/identification",
            json={"decision": "no_reasonable_grounds", "decided_at": datetime.now(UTC).isoformat()},
            headers=authority,
        )
        assert r.status_code == 200, r.text
        decided_at = datetime.fromisoformat(r.json()["decided_at"])
        r = await c["intake"].post(
            f"/v1/referrals/{held[0]}/investigation",
            json={"opened": True, "date": today.isoformat()},
            headers=police,
        )
        assert r.status_code == 200
        assert (
            await c["intake"].post(f"/v1/referrals/{held[0]}/hold", headers=police)
        ).status_code == 200
        withdrawn_at = {}
        for rid, _ in (due, held, minor):
            r = await c["intake"].post(f"/v1/referrals/{rid}/withdraw", headers=submitter)
            assert r.status_code == 200 and r.json()["status"] == "withdrawn"
        async with databases["intake"].sessions() as session:
            for rid, _ in (due, held, minor):
                row = await session.get(Referral, rid)
                assert row is not None and row.withdrawn_at is not None
                withdrawn_at[rid] = row.withdrawn_at

        def year_after(moment: datetime, years: int = 1) -> str:
            later = moment.replace(year=moment.year + years)
            return later.isoformat().replace("+00:00", "Z")

        # What falls due: on the moved clock, now; and within 2,000 more days.
        r = await c["intake"].get(
            "/v1/retention/due", params={"within_days": 0}, headers=coordinator
        )
        assert r.status_code == 200, r.text
        clock = datetime.fromisoformat(r.json()["now"])
        assert timedelta(days=399) < clock - datetime.now(UTC) <= timedelta(days=400)
        items = sorted(r.json()["items"], key=lambda i: i["reference"])
        assert items == [
            {
                "referral_id": rid,
                "reference": ref,
                "outcome": "withdrawn",
                "reached_at": withdrawn_at[rid].isoformat().replace("+00:00", "Z"),
                "due": year_after(withdrawn_at[rid]),
                "held": rid == held[0],
                "minor": False,
            }
            for rid, ref in (due, held)
        ]
        r = await c["intake"].get(
            "/v1/retention/due", params={"within_days": 2000}, headers=mint.headers("dpo", "dpo")
        )
        assert r.status_code == 200
        later = {i["reference"]: (i["outcome"], i["due"], i["minor"]) for i in r.json()["items"]}
        majority = date(born.year + 18, 2, 1)  # the month after the 18th birthday
        assert later == {
            due[1]: ("withdrawn", year_after(withdrawn_at[due[0]]), False),
            held[1]: ("withdrawn", year_after(withdrawn_at[held[0]]), False),
            grounds[1]: ("no_reasonable_grounds", year_after(decided_at, 2), False),
            minor[1]: ("withdrawn", f"{add_years(majority, 3).isoformat()}T00:00:00Z", True),
        }
        for headers in (
            mint.headers("mvd-ctu", "supervisor"),
            mint.headers("nrm-coordinator", "caseworker"),
        ):
            r = await c["intake"].get("/v1/retention/due", headers=headers)
            assert r.status_code == 404

        # The sweep: exactly the one due and not held.
        sweep = apps["intake"].state.sweep
        ticks = sweep.ticks
        sweep.wake.set()
        await wait_for(lambda: _ticked(sweep, ticks + 2), timeout=60)
        assert sweep.erased == 1
        assert await outbox_payloads(databases["intake"], "referral.erased") == [
            {"referral_id": due[0], "basis": "retention_expired"}
        ]
        for rid, expected in (
            (due[0], 404),
            (grounds[0], 200),
            (held[0], 200),
            (minor[0], 200),
            (open_[0], 200),
        ):
            r = await c["intake"].get(f"/v1/referrals/{rid}", headers=submitter)
            assert r.status_code == expected, rid

        # The hold lifted, the next sweep erases that one too.
        assert (
            await c["intake"].delete(f"/v1/referrals/{held[0]}/hold", headers=police)
        ).status_code == 204
        ticks = sweep.ticks
        sweep.wake.set()
        await wait_for(lambda: _ticked(sweep, ticks + 2), timeout=60)
        assert [
            p["referral_id"] for p in await outbox_payloads(databases["intake"], "referral.erased")
        ] == [due[0], held[0]]
        r = await c["intake"].get(f"/v1/referrals/{held[0]}", headers=submitter)
        assert r.status_code == 404


async def _ticked(loop: Any, ticks: int) -> bool:
    return bool(loop.ticks >= ticks)
