"""Audit: the chain from the real broker, tamper detection online and offline, the auditor API."""

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import event, func, text
from sqlmodel import select

from contracts.cloudevents import CloudEvent
from contracts.events import (
    AccessGranted,
    AuthFailed,
    ReferralAcknowledged,
    ReferralDeclined,
    ReferralWithdrawn,
)
from services.audit import chain, service
from services.audit.app import create_app
from services.audit.models import ChainCheckpoint, Record, ReferralKey, audit_metadata
from services.audit.settings import AuditSettings
from services.common.broker import EmbeddedBroker
from services.common.bus import create_producer
from services.common.crypto import Vault, open_bytes, seal_bytes, vault_from_settings
from services.common.db import create_all, transaction
from services.common.models import runtime_metadata
from services.common.settings import Settings
from tests.support import Database, cursor_answers, publish_event, wait_for, walk
from tests.tokens import AUDIENCE, ISSUER, TokenMint


def audit_settings(tmp_path: Path) -> AuditSettings:
    return AuditSettings(
        data_dir=tmp_path,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        master_keys={"k1": Vault.generate_key()},
        checkpoint_interval_seconds=3600,
    )


@dataclass
class Audit:
    client: httpx.AsyncClient
    mint: TokenMint
    db: Database
    producer: AIOKafkaProducer

    @property
    def auditor(self) -> dict[str, str]:
        return self.mint.headers("audit-office", "auditor")

    async def count(self) -> int:
        async with self.db.sessions() as session:
            return int((await session.exec(select(func.count()).select_from(Record))).one())


@pytest.fixture
async def audit(db: Database, own_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Audit]:
    mint = TokenMint()
    app = create_app(
        audit_settings(tmp_path), bootstrap=own_broker.bootstrap, engine=db.engine, jwks=mint.jwks
    )
    producer = create_producer(own_broker.bootstrap)
    await producer.start()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://audit") as client:
            yield Audit(client, mint, db, producer)
    await producer.stop()


async def test_every_event_is_chained_once(audit: Audit) -> None:
    rid = str(uuid.uuid4())
    now = datetime.now(UTC)
    payloads: list[tuple[Any, str | None]] = [
        (
            ReferralAcknowledged(
                delivery_id="d1", referral_id=rid, agency="ngo-north", actor="ngo-north", at=now
            ),
            rid,
        ),
        (
            ReferralDeclined(
                delivery_id="d2",
                referral_id=rid,
                agency="gp",
                actor="gp",
                at=now,
                reason="Aigerim Example is not ours",
            ),
            rid,
        ),
        (
            AccessGranted(
                action="referral.read",
                resource_type="referral",
                resource_id=rid,
                agency="gp",
                client_id="gp",
                disclosure="full",
                purpose="case review",
            ),
            rid,
        ),
        (AuthFailed(reason="expired token", path="/v1/inbox"), None),
        (
            ReferralWithdrawn(
                referral_id=rid, reference="NRM-2026-000001", withdrawn_by="labour-insp"
            ),
            rid,
        ),
    ]
    events = []
    for payload, subject in payloads:
        events.append(await publish_event(audit.producer, payload, subject or "none"))
    # Every event a second time: redelivery must not add records.
    for e in events:
        record = e.to_kafka()
        topic = {
            "referral.acknowledged": "nrm.case-events.v1",
            "referral.declined": "nrm.case-events.v1",
            "access.granted": "nrm.access.v1",
            "auth.failed": "nrm.access.v1",
            "referral.withdrawn": "nrm.referrals.v1",
        }[e.type]
        await audit.producer.send_and_wait(
            topic, record.value, key=record.key, headers=record.headers
        )
    await wait_for(lambda: _at_least(audit, 5), timeout=30)
    r = await audit.client.get("/v1/audit/verify", headers=audit.auditor)
    assert r.json()["ok"] is True
    assert await audit.count() in (5, 6)  # 5 events, plus the verify query's own access.granted
    r = await audit.client.get("/v1/audit/events", params={"referral": rid}, headers=audit.auditor)
    items = r.json()["items"]
    assert sorted(i["event_id"] for i in items) == sorted(e.id for e in events if e.subject == rid)
    by_type = {i["type"]: i for i in items}
    # Free text someone typed is kept as a fingerprint, never as text.
    reason = by_type["referral.declined"]["payload"]["reason"]
    assert set(reason) == {"sha256", "length"} and "Aigerim" not in json.dumps(items)
    assert by_type["access.granted"]["outcome"] == "granted"
    assert by_type["access.granted"]["client_id"] == "gp"
    assert {i["topic"] for i in items} >= {"nrm.case-events.v1", "nrm.access.v1"}
    assert all(isinstance(i["offset"], int) for i in items)


async def _at_least(audit: Audit, n: int) -> bool:
    return await audit.count() >= n


async def test_auditor_only_and_queries_are_audited(audit: Audit) -> None:
    paths = [
        "/v1/audit/events",
        "/v1/audit/referrals/x/timeline",
        "/v1/audit/agencies/gp/access",
        "/v1/audit/verify",
        "/v1/audit/checkpoints",
        "/v1/audit/export",
    ]
    for roles in (("caseworker",), ("referrer",), ("admin",), ("supervisor",)):
        for path in paths:
            r = await audit.client.get(path, headers=audit.mint.headers("gp", *roles))
            assert r.status_code == 404, (roles, path)
    assert (
        await audit.client.post("/v1/audit/checkpoints", headers=audit.mint.headers("gp", "admin"))
    ).status_code == 404
    assert (await audit.client.get("/v1/audit/verify")).status_code == 401
    for path in paths:
        assert (await audit.client.get(path, headers=audit.auditor)).status_code == 200, path

    # Each query above came back through the bus as an access.granted record.
    async def queries_recorded() -> bool:
        r = await audit.client.get(
            "/v1/audit/events",
            params={"type": "access.granted", "actor": "audit-office", "limit": 500},
            headers=audit.auditor,
        )
        actions = {i["payload"]["action"] for i in r.json()["items"]}
        return actions >= {
            "audit.events",
            "audit.timeline",
            "audit.agency_access",
            "audit.verify",
            "audit.checkpoints",
            "audit.export",
        }

    await wait_for(queries_recorded, timeout=30)
    denied = await audit.client.get("/v1/audit/agencies/audit-office/access", headers=audit.auditor)
    assert denied.status_code == 200


# Tampering: a chain of records written by the service, then altered underneath it.


async def build_chain(db: Database, tmp_path: Path, n: int = 12) -> tuple[str, AuditSettings]:
    settings = audit_settings(tmp_path)
    vault = vault_from_settings(settings)
    await create_all(db.engine, audit_metadata, runtime_metadata)
    for i in range(n):
        payload = ReferralWithdrawn(
            referral_id=f"r{i}", reference=f"NRM-2026-{i:06d}", withdrawn_by="gp"
        )
        e = CloudEvent.new(source="intake", payload=payload, subject=f"r{i}", agency="gp")
        async with transaction(db.sessions) as session:
            await service.append(
                session, event=e, topic="nrm.referrals.v1", partition=0, offset=i, vault=vault
            )
        if i == 7:  # a checkpoint at size 8
            async with transaction(db.sessions) as session:
                await service.checkpoint(
                    session, name=settings.key_name, origin=settings.origin, vault=vault
                )
    async with transaction(db.sessions) as session:
        vkey = await service.public_key(session, name=settings.key_name, vault=vault)
    return vkey, settings


async def tamper_sql(db: Database, *statements: str) -> None:
    """Run statements as someone with direct database access (on PostgreSQL, past the
    append-only triggers, which a superuser can switch off)."""
    async with db.engine.begin() as conn:
        if db.kind == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await conn.execute(text(statement))


SWAP = [  # swap the contents of records 5 and 6 (keeping the primary keys in place)
    "UPDATE audit_record SET sequence = -5 WHERE sequence = 5",
    "UPDATE audit_record SET sequence = 5 WHERE sequence = 6",
    "UPDATE audit_record SET sequence = 6 WHERE sequence = -5",
]

COLUMNS = ", ".join(f'"{f}"' for f in (*chain.FIELDS, "hash"))
FORGED = COLUMNS.replace('"sequence"', "3", 1).replace('"event_id"', "'forged'", 1)
INSERT = [  # make room at 3 (two steps: a primary key cannot pass through itself), then forge 3
    "UPDATE audit_record SET sequence = sequence + 1000 WHERE sequence >= 3",
    "UPDATE audit_record SET sequence = sequence - 999 WHERE sequence >= 1003",
    f"INSERT INTO audit_record ({COLUMNS}) SELECT {FORGED} FROM audit_record WHERE sequence = 4",
]

ZEROS = "0" * 64
DB_TAMPERING = [
    ("changed-field", ["UPDATE audit_record SET agency = 'mvd-ctu' WHERE sequence = 4"], 4),
    ("deleted-record", ["DELETE FROM audit_record WHERE sequence = 6"], 6),
    ("inserted-record", INSERT, 3),
    ("swapped-records", SWAP, 5),
    ("truncated-after-checkpoint", ["DELETE FROM audit_record WHERE sequence >= 8"], 8),
    (
        "changed-commitment",
        [f"UPDATE audit_record SET commitment = '{'0' * 64}' WHERE sequence = 4"],
        4,
    ),
    ("downgraded-version", ["UPDATE audit_record SET version = 1 WHERE sequence = 6"], 6),
    # The first v2 record passed off as an erased v1 one: its referral was never erased.
    ("downgraded-first-record", ["UPDATE audit_record SET version = 1 WHERE sequence = 1"], 1),
]


@pytest.mark.parametrize(
    ("kind", "statements", "first_bad"), DB_TAMPERING, ids=[t[0] for t in DB_TAMPERING]
)
async def test_tampering_in_the_database_is_found(
    db: Database, tmp_path: Path, kind: str, statements: list[str], first_bad: int
) -> None:
    vkey, _ = await build_chain(db, tmp_path)
    async with db.sessions() as session:
        clean = await service.verify(session, vkey=vkey)
        assert clean["ok"] is True, clean
    await tamper_sql(db, *statements)
    async with db.sessions() as session:
        result = await service.verify(session, vkey=vkey)
    assert result["ok"] is False
    assert result["first_bad_sequence"] == first_bad, result


async def test_a_salt_swapped_between_records_is_found_online_and_offline(
    db: Database, tmp_path: Path
) -> None:
    """Someone with the master key re-seals records 4 and 5 with each other's salt: the chain
    (over commitments) still verifies, opening the payloads does not."""
    vkey, settings = await build_chain(db, tmp_path)
    vault = vault_from_settings(settings)
    opened: dict[int, bytes] = {}
    async with transaction(db.sessions) as session:
        records = {r.sequence: r for r in await session.exec(select(Record))}
        keys = {}
        for seq in (4, 5):
            row = await session.get(ReferralKey, records[seq].key_ref)
            assert row is not None
            keys[seq] = vault.unwrap(
                row.wrapped_key,
                row.master_key_id,
                record_id=f"audit-referral-key:{row.referral_id}",
            )
            opened[seq] = open_bytes(
                keys[seq], records[seq].sealed or b"", aad=f"nrm-audit:{seq}".encode()
            )
    swapped = {4: opened[5][:32] + opened[4][32:], 5: opened[4][:32] + opened[5][32:]}
    for seq in (4, 5):
        blob = seal_bytes(keys[seq], swapped[seq], aad=f"nrm-audit:{seq}".encode())
        await tamper_sql(
            db, f"UPDATE audit_record SET sealed = {_blob(db, blob)} WHERE sequence = {seq}"
        )
    async with db.sessions() as session:
        chain_only = await service.verify(session, vkey=vkey)
        deep = await service.verify(session, vkey=vkey, vault=vault)
    assert chain_only["ok"] is True
    assert (deep["ok"], deep["first_bad_sequence"]) == (False, 4)
    assert deep["payloads"] == {"checked": 3, "erased": 0, "first_bad_sequence": 4}
    offline = chain.verify_export(await export(db, vkey, settings), vkey)
    assert (offline["ok"], offline["first_bad_sequence"]) == (False, 4)


def _blob(db: Database, blob: bytes) -> str:
    return f"X'{blob.hex()}'" if db.kind == "sqlite" else f"'\\x{blob.hex()}'::bytea"


async def test_forged_checkpoint_signature_is_found(db: Database, tmp_path: Path) -> None:
    vkey, _settings = await build_chain(db, tmp_path)
    async with db.sessions() as session:
        (note,) = [c.note for c in await session.exec(select(ChainCheckpoint))]
    forged = note.replace("\n8\n", "\n9\n")  # claim one more record, keep the old signature
    await tamper_sql(db, f"UPDATE audit_checkpoint SET note = '{forged}'")
    async with db.sessions() as session:
        result = await service.verify(session, vkey=vkey)
    assert result["ok"] is False
    assert result["first_bad_sequence"] == 9
    assert result["checkpoints"]["bad"][0]["problem"] == "checkpoint signature does not verify"


async def export(db: Database, vkey: str, settings: Settings) -> list[bytes]:
    vault = vault_from_settings(settings)
    async with db.sessions() as session:
        lines = service.export_lines(session, origin="nrm-exchange/audit", vkey=vkey, vault=vault)
        return [line async for line in lines]


def record_lines(lines: list[bytes]) -> list[int]:
    return [i for i, line in enumerate(lines) if b'"kind":"record"' in line]


def edit(line: bytes, **changes: Any) -> bytes:
    item = json.loads(line)
    item.update(changes)
    return json.dumps(item).encode() + b"\n"


async def test_tampering_in_an_export_is_found_offline(db: Database, tmp_path: Path) -> None:
    vkey, settings = await build_chain(db, tmp_path)
    lines = await export(db, vkey, settings)
    assert chain.verify_export(lines, vkey)["ok"] is True
    rec = record_lines(lines)  # rec[k] is the line of sequence k + 1
    checkpoint = next(i for i, line in enumerate(lines) if b'"kind":"checkpoint"' in line)
    other = chain.verifier_key("nrm-exchange-audit", bytes(32))

    cases = {
        "changed-field": (
            [*lines[: rec[3]], edit(lines[rec[3]], agency="mvd-ctu"), *lines[rec[3] + 1 :]],
            4,
        ),
        "deleted-record": (lines[: rec[5]] + lines[rec[5] + 1 :], 6),
        "inserted-record": (
            [*lines[: rec[2]], edit(lines[rec[2]], event_id="forged"), *lines[rec[2] :]],
            3,
        ),
        "swapped-records": (
            [*lines[: rec[4]], lines[rec[5]], lines[rec[4]], *lines[rec[5] + 1 :]],
            5,
        ),
        "truncated-after-checkpoint": ([*lines[: rec[7]], lines[checkpoint]], 8),
        "forged-checkpoint": (
            [
                *lines[:checkpoint],
                edit(
                    lines[checkpoint],
                    note=json.loads(lines[checkpoint])["note"].replace("\n8\n", "\n9\n"),
                ),
            ],
            9,
        ),
    }
    for kind, (tampered, first_bad) in cases.items():
        result = chain.verify_export(tampered, vkey)
        assert (result["ok"], result["first_bad_sequence"]) == (False, first_bad), (kind, result)
    # A checkpoint verified with someone else's key does not pass either.
    with pytest.raises(ValueError):
        chain.parse_verifier_key(other.replace("+", "+0", 1))
    assert chain.verify_export(lines, other)["ok"] is False


async def test_offline_cli_verifies_an_export(db: Database, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from services.cli import app

    vkey, settings = await build_chain(db, tmp_path)
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(await export(db, vkey, settings)))
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", str(path), "--key", vkey])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["records"] == 12
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3] + lines[4:]))  # drop record 3
    bad = runner.invoke(app, ["audit", "verify", str(path), "--key", vkey])
    assert bad.exit_code == 1
    assert json.loads(bad.output)["first_bad_sequence"] == 3


async def test_audit_tables_are_append_only(db: Database, tmp_path: Path) -> None:
    """The service never updates or deletes a record; PostgreSQL refuses it even if asked."""
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.lstrip().upper())

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        vkey, _ = await build_chain(db, tmp_path)
        async with db.sessions() as session:
            await service.verify(session, vkey=vkey)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    touching = [
        s
        for s in statements
        if s.startswith(
            (
                "UPDATE AUDIT_RECORD",
                "DELETE FROM AUDIT_RECORD",
                "UPDATE AUDIT_CHECKPOINT",
                "DELETE FROM AUDIT_CHECKPOINT",
            )
        )
    ]
    assert not touching
    assert any(s.startswith("INSERT INTO AUDIT_RECORD") for s in statements)
    if db.kind == "postgresql":
        for statement in (
            "UPDATE audit_record SET agency = 'x'",
            "DELETE FROM audit_record",
            "TRUNCATE audit_record",
            "DELETE FROM audit_checkpoint",
        ):
            with pytest.raises(Exception, match="append-only"):
                async with db.engine.begin() as conn:
                    await conn.execute(text(statement))


async def test_a_gap_in_a_sources_numbers_is_missing_online_and_offline(
    db: Database, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from services.cli import app

    settings = audit_settings(tmp_path)
    vault = vault_from_settings(settings)
    await create_all(db.engine, audit_metadata, runtime_metadata)
    for i, number in enumerate((1, 2, 4, 5, 7)):  # intake's 3 and 6 never arrived
        payload = ReferralWithdrawn(referral_id=f"g{i}", reference=f"g-{i}", withdrawn_by="gp")
        event = CloudEvent.new(source="intake", payload=payload, subject=f"g{i}", agency="gp")
        async with transaction(db.sessions) as session:
            await service.append(
                session,
                event=event.model_copy(update={"sequence": number}),
                topic="nrm.referrals.v1",
                partition=0,
                offset=i,
                vault=vault,
            )
    async with transaction(db.sessions) as session:
        vkey = await service.public_key(session, name=settings.key_name, vault=vault)
    async with db.sessions() as session:
        now = await service.verify(session, vkey=vkey, grace=timedelta(0))
        within_grace = await service.verify(session, vkey=vkey, grace=timedelta(hours=1))
    assert (now["ok"], now["missing"]) == (False, {"intake": [[3, 3], [6, 6]]})
    assert now["first_bad_sequence"] is None and now["records"] == 5
    assert (within_grace["ok"], within_grace["missing"]) == (True, {})

    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(await export(db, vkey, settings)))
    runner = CliRunner()
    late = runner.invoke(app, ["audit", "verify", str(path), "--key", vkey, "--grace", "0"])
    assert late.exit_code == 1, late.output
    assert json.loads(late.output)["missing"] == {"intake": [[3, 3], [6, 6]]}
    early = runner.invoke(app, ["audit", "verify", str(path), "--key", vkey, "--grace", "3600"])
    assert early.exit_code == 0, early.output
    assert json.loads(early.output)["missing"] == {}


async def test_lists_page_by_one_opaque_cursor(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Ten records: an exactly full page is the last (it once led to an extra empty page);
    two and a half pages give every record once, in sequence order; a bad cursor is 422."""
    _, settings = await build_chain(db, tmp_path, n=10)
    mint = TokenMint()
    app = create_app(settings, bootstrap=own_broker.bootstrap, engine=db.engine, jwks=mint.jwks)
    auditor = mint.headers("audit-office", "auditor")
    withdrawn = {"type": "referral.withdrawn"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c,
    ):
        events = "/v1/audit/events"
        # The first read: the chain holds the ten records, none of the reads' own yet.
        r = await c.get(events, params={**withdrawn, "limit": 4}, headers=auditor)
        # [4, 10]: the last sequence and the walk's bound; opaque to clients, stated here
        assert r.json()["next_cursor"] == "WzQsMTBd"
        pages = await walk(
            c, events, headers=auditor, params={**withdrawn, "limit": 10}, key="sequence"
        )
        assert pages == [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]
        pages = await walk(
            c, events, headers=auditor, params={**withdrawn, "limit": 5}, key="sequence"
        )
        assert pages == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
        pages = await walk(
            c, events, headers=auditor, params={**withdrawn, "limit": 4}, key="sequence"
        )
        assert pages == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
        refused = (422, "application/problem+json", ["query/cursor"])
        for path, headers in (
            (events, auditor),
            ("/v1/audit/agencies/gp/access", auditor),
            (f"/v1/audit/referrals/{uuid.uuid4()}/accesses", mint.headers("dpo", "dpo")),
        ):
            assert await cursor_answers(c, path, headers=headers) == {
                "%%%": refused,
                "bm90IGpzb24": refused,
                "WyJ4Il0": refused,
                "WzVd": refused,  # [5]: a cursor of these lists has the walk's bound too
            }, path
            r = await c.get(path, params={"cursor": "WzUsMTBd"}, headers=headers)  # [5, 10]
            assert r.status_code == 200, (path, r.text)


async def test_a_walk_ends_though_each_of_its_reads_is_audited(
    db: Database, own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Every read of the audit log is itself recorded. A walk one record per page, each page's
    own record in the chain before the next page is asked for, once never ended; it now lists
    the three records there when it began, and the next walk finds the walk's three reads."""
    _, settings = await build_chain(db, tmp_path, n=3)
    mint = TokenMint()
    app = create_app(settings, bootstrap=own_broker.bootstrap, engine=db.engine, jwks=mint.jwks)
    auditor = mint.headers("audit-office", "auditor")

    async def records() -> int:
        async with db.sessions() as session:
            return (await session.exec(select(func.count()).select_from(Record))).one()

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c,
    ):
        pages: list[list[tuple[int, str]]] = []
        cursor: str | None = None
        while len(pages) < 10:
            params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            r = await c.get("/v1/audit/events", params=params, headers=auditor)
            assert r.status_code == 200, r.text
            pages.append([(i["sequence"], i["type"]) for i in r.json()["items"]])
            await wait_for(partial(_at_least_records, records, 3 + len(pages)), timeout=30)
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        withdrawn = "referral.withdrawn"
        assert pages == [[(1, withdrawn)], [(2, withdrawn)], [(3, withdrawn)]]
        r = await c.get("/v1/audit/events", params={"limit": 500}, headers=auditor)
        assert [(i["sequence"], i["type"]) for i in r.json()["items"]] == [
            (1, withdrawn),
            (2, withdrawn),
            (3, withdrawn),
            (4, "access.granted"),
            (5, "access.granted"),
            (6, "access.granted"),
        ]
        assert r.json()["next_cursor"] is None


async def _at_least_records(count: Any, n: int) -> bool:
    return bool(await count() >= n)
