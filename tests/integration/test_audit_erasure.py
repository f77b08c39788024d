"""Audit and erasure (issue 23): a referral's payloads sealed under its key, destroyed on
`referral.erased`, while the chain (with records written before sealing existed) verifies online
and offline; the timeline keeps who did what and when; a restored backup is shredded again."""

import json
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlmodel import col, select

from contracts.cloudevents import CloudEvent
from contracts.events import AccessDenied, AccessGranted, ReferralErased, ReferralWithdrawn
from contracts.topics import topic_for_type
from services.audit import chain, service
from services.audit.app import create_app
from services.audit.models import (
    ChainHead,
    ErasedReferral,
    Record,
    ReferralKey,
    audit_metadata,
)
from services.audit.settings import AuditSettings
from services.common.broker import EmbeddedBroker
from services.common.bus import create_producer
from services.common.crypto import SealError, Vault, open_bytes, vault_from_settings
from services.common.db import create_all, transaction
from services.common.erasure import ErasureLedger
from services.common.models import runtime_metadata
from tests.support import Database, wait_for
from tests.tokens import AUDIENCE, ISSUER, TokenMint

CANARY = "Zhanar-Canary-7Q4"  # stands for identity that must not survive erasure
LEGACY_CANARY = "Legacy-Canary-K9"  # in a v1 record's plain payload


def settings_for(tmp_path: Path, key: str) -> AuditSettings:
    return AuditSettings(
        data_dir=tmp_path,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        master_keys={"k1": key},
        checkpoint_interval_seconds=3600,
    )


@dataclass
class Stack:
    app: FastAPI
    client: httpx.AsyncClient
    mint: TokenMint


@dataclass
class World:
    db: Database
    tmp_path: Path
    settings: AuditSettings
    broker: EmbeddedBroker
    producer: AIOKafkaProducer
    mint: TokenMint

    @property
    def vault(self) -> Vault:
        return vault_from_settings(self.settings)

    def stack(self) -> Any:
        world = self

        class _Running:
            async def __aenter__(self) -> Stack:
                self.app = create_app(
                    world.settings,
                    bootstrap=world.broker.bootstrap,
                    engine=world.db.engine,
                    jwks=world.mint.jwks,
                )
                self.lifespan = self.app.router.lifespan_context(self.app)
                await self.lifespan.__aenter__()
                transport = httpx.ASGITransport(app=self.app)
                self.client = httpx.AsyncClient(transport=transport, base_url="http://audit")
                return Stack(self.app, self.client, world.mint)

            async def __aexit__(self, *exc: object) -> None:
                await self.client.aclose()
                await self.lifespan.__aexit__(None, None, None)

        return _Running()

    async def send(self, payload: Any, subject: str | None, *, agency: str, actor: str) -> str:
        event = CloudEvent.new(
            source="intake", payload=payload, subject=subject, agency=agency, actor=actor
        )
        record = event.to_kafka()
        topic = topic_for_type(event.type).name
        await self.producer.send_and_wait(
            topic, record.value, key=record.key, headers=record.headers
        )
        return event.id

    async def records(self, subject: str) -> list[Record]:
        async with self.db.sessions() as session:
            query = select(Record).where(Record.subject == subject)
            return list(await session.exec(query.order_by(col(Record.sequence))))

    async def has(self, subject: str, event_ids: list[str]) -> bool:
        return {r.event_id for r in await self.records(subject)} >= set(event_ids)


@pytest.fixture
async def world(db: Database, own_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[World]:
    producer = create_producer(own_broker.bootstrap)
    await producer.start()
    try:
        settings = settings_for(tmp_path, Vault.generate_key())
        yield World(db, tmp_path, settings, own_broker, producer, TokenMint())
    finally:
        await producer.stop()


async def legacy_records(db: Database, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Version 1 records as audit wrote them before payloads were sealed: the payload itself
    in the hash, in plain text."""
    await create_all(db.engine, audit_metadata, runtime_metadata)
    prev = chain.GENESIS
    async with transaction(db.sessions) as session:
        for seq, (subject, kind, payload) in enumerate(rows, start=1):
            values = (
                seq, f"legacy-{seq}", kind, f"2026-11-01T10:00:0{seq}.000000Z", "intake", "gp",
                "gp.caseworker", subject, None, "nrm.referrals.v1", 0, seq,
                chain.canonical(payload), prev,
            )  # fmt: skip
            prev = chain.record_hash(values)
            fields: dict[str, Any] = dict(zip(chain.FIELDS, values, strict=True))
            session.add(Record(**fields, hash=prev, version=1))
        session.add(ChainHead(id=1, sequence=len(rows), hash=prev))


def raw_files(db: Database) -> bytes:
    path = Path(db.url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


async def test_erasure_keeps_the_timeline_and_the_chain_and_destroys_the_payloads(
    world: World,
) -> None:
    rid, other = str(uuid.uuid4()), str(uuid.uuid4())
    await legacy_records(
        world.db,
        [
            (rid, "access.denied", {"action": "referral.read", "reason": LEGACY_CANARY}),
            (other, "referral.withdrawn", {"referral_id": other, "reference": "NRM-2026-000007"}),
        ],
    )
    async with world.stack() as stack:
        auditor = stack.mint.headers("audit-office", "auditor")
        sent = [
            await world.send(
                ReferralWithdrawn(referral_id=rid, reference="NRM-2026-000042", withdrawn_by="gp"),
                rid,
                agency="gp",
                actor="gp.referrer",
            ),
            await world.send(
                AccessDenied(
                    action="referral.read",
                    resource_type="referral",
                    resource_id=rid,
                    agency="ngo-south",
                    actor="ngo-south.caseworker",
                    reason=f"not a recipient; note {CANARY}",
                ),
                rid,
                agency="ngo-south",
                actor="ngo-south.caseworker",
            ),
            await world.send(
                AccessGranted(
                    action="referral.read",
                    resource_type="referral",
                    resource_id=rid,
                    agency="mvd-ctu",
                    actor="mvd-ctu.caseworker",
                    disclosure="full",
                ),
                rid,
                agency="mvd-ctu",
                actor="mvd-ctu.caseworker",
            ),
        ]
        kept = await world.send(
            ReferralWithdrawn(referral_id=other, reference="NRM-2026-000043", withdrawn_by="gp"),
            other,
            agency="gp",
            actor="gp.referrer",
        )
        await wait_for(lambda: world.has(rid, sent), timeout=30)
        await wait_for(lambda: world.has(other, [kept]), timeout=30)

        # Before: the payloads read back, and the dpo sees who read the referral.
        r = await stack.client.get("/v1/audit/events", params={"referral": rid}, headers=auditor)
        assert CANARY in r.text and LEGACY_CANARY in r.text
        dpo = stack.mint.headers("dpo-office", "dpo")
        r = await stack.client.get(f"/v1/audit/referrals/{rid}/accesses", headers=dpo)
        assert r.status_code == 200, r.text
        assert [
            (i["type"], i["agency"], i["actor"], i["outcome"], i["action"], i["erased"])
            for i in r.json()["items"]
        ] == [
            ("access.denied", "gp", "gp.caseworker", None, "referral.read", False),
            (
                "access.denied",
                "ngo-south",
                "ngo-south.caseworker",
                "denied",
                "referral.read",
                False,
            ),
            ("access.granted", "mvd-ctu", "mvd-ctu.caseworker", "granted", "referral.read", False),
        ]
        assert (
            await stack.client.get(f"/v1/audit/referrals/{rid}/accesses", headers=auditor)
        ).status_code == 404
        # Sealed v2 payloads: the canary is only in the legacy plain payload.
        sealed_before = {r.sequence: r.sealed for r in await world.records(rid) if r.sealed}
        assert len(sealed_before) == 3
        async with world.db.sessions() as session:
            wrapped = (await session.get(ReferralKey, rid)).wrapped_key  # type: ignore[union-attr]
        if world.db.kind == "sqlite":
            files = raw_files(world.db)
            assert CANARY.encode() not in files and LEGACY_CANARY.encode() in files
            assert wrapped in files and all(blob in files for blob in sealed_before.values())
            backup = world.tmp_path / "backup.db"
            source = sqlite3.connect(world.db.url.split("///", 1)[1])
            with sqlite3.connect(backup) as target:
                source.backup(target)
            source.close()

        erased = await world.send(
            ReferralErased(referral_id=rid, basis="victim_request"),
            rid,
            agency="nrm-coordinator",
            actor="dpo",
        )
        await wait_for(lambda: world.has(rid, [erased]), timeout=30)

        # The timeline: every event, who and when; the payloads erased; the erasure's basis.
        r = await stack.client.get(f"/v1/audit/referrals/{rid}/timeline", headers=auditor)
        steps = r.json()["events"]
        assert [(s["type"], s["agency"], s["actor"], s.get("erased")) for s in steps] == [
            ("access.denied", "gp", "gp.caseworker", True),
            ("referral.withdrawn", "gp", "gp.referrer", True),
            ("access.denied", "ngo-south", "ngo-south.caseworker", True),
            ("access.granted", "mvd-ctu", "mvd-ctu.caseworker", True),
            ("referral.erased", "nrm-coordinator", "dpo", None),
        ]
        # Topics reach audit in any order, and audit's own queries join the chain in between:
        # the legacy record first, the erasure last.
        sequences = [s["sequence"] for s in steps]
        assert sequences[0] == 1 and sequences[4] == max(sequences)
        assert all(s["payload"] is None for s in steps[:4]) and all(s["time"] for s in steps)
        assert steps[4]["basis"] == "victim_request"
        r = await stack.client.get("/v1/audit/events", params={"referral": rid}, headers=auditor)
        items = r.json()["items"]
        assert [(i["erased"], i["payload"]) for i in items[:4]] == [(True, None)] * 4
        assert [i["sequence"] for i in items] == sorted(sequences)
        assert items[4]["payload"] == {"basis": "victim_request", "referral_id": rid}
        assert CANARY not in r.text and LEGACY_CANARY not in r.text
        r = await stack.client.get(f"/v1/audit/referrals/{rid}/accesses", headers=dpo)
        assert [(i["agency"], i["actor"], i["erased"]) for i in r.json()["items"]] == [
            ("gp", "gp.caseworker", True),
            ("ngo-south", "ngo-south.caseworker", True),
            ("mvd-ctu", "mvd-ctu.caseworker", True),
        ]
        # The other referral keeps its payloads.
        r = await stack.client.get("/v1/audit/events", params={"referral": other}, headers=auditor)
        assert [i["payload"]["reference"] for i in r.json()["items"]] == [
            "NRM-2026-000007",
            "NRM-2026-000043",
        ]

        # Verification over commitments passes, online and offline.
        r = await stack.client.get("/v1/audit/verify", headers=auditor)
        assert (r.json()["ok"], r.json()["first_bad_sequence"]) == (True, None), r.json()
        r = await stack.client.get("/v1/audit/verify", params={"payloads": "true"}, headers=auditor)
        assert r.json()["ok"] is True and r.json()["payloads"]["first_bad_sequence"] is None
        assert r.json()["payloads"]["erased"] == 3
        await stack.client.post("/v1/audit/checkpoints", headers=auditor)
        export = await stack.client.get("/v1/audit/export", headers=auditor)
        vkey = (await stack.client.get("/v1/audit/checkpoints", headers=auditor)).json()[
            "public_key"
        ]
        assert CANARY not in export.text and LEGACY_CANARY not in export.text
        path = world.tmp_path / "export.jsonl"
        path.write_bytes(export.content)
        from typer.testing import CliRunner

        from services.cli import app as cli

        offline = CliRunner().invoke(cli, ["audit", "verify", str(path), "--key", vkey])
        assert offline.exit_code == 0, offline.output
        assert json.loads(offline.output)["first_bad_sequence"] is None

        # Nothing left opens the erased payloads: not the remaining keys, not the master key.
        # Only the erasure record keeps a sealed payload (the shared key: id and basis).
        left = [(r.type, r.key_ref) for r in await world.records(rid) if r.sealed]
        assert left == [("referral.erased", service.SHARED_KEY)]
        async with world.db.sessions() as session:
            assert await session.get(ReferralKey, rid) is None
            remaining = list(await session.exec(select(ReferralKey)))
        assert {k.referral_id for k in remaining} >= {other, service.SHARED_KEY}
        for k in remaining:
            key = world.vault.unwrap(
                k.wrapped_key, k.master_key_id, record_id=f"audit-referral-key:{k.referral_id}"
            )
            for sequence, blob in sealed_before.items():
                with pytest.raises(SealError):
                    open_bytes(key, blob, aad=f"nrm-audit:{sequence}".encode())
        if world.db.kind == "sqlite":
            files = raw_files(world.db)
            assert CANARY.encode() not in files and LEGACY_CANARY.encode() not in files
            assert wrapped not in files
            assert not [blob for blob in sealed_before.values() if blob in files]
        assert [
            e.referral_id for e in ErasureLedger(world.settings.erasure_ledger_path()).entries()
        ] == [rid]

    if world.db.kind != "sqlite":
        return
    # A backup taken before the erasure, restored: the start replays the ledger.
    await world.db.engine.dispose()
    db_file = Path(world.db.url.split("///", 1)[1])
    for stale in db_file.parent.glob(db_file.name + "-*"):
        stale.unlink()
    shutil.copy(backup, db_file)
    async with world.db.sessions() as session:
        assert await session.get(ReferralKey, rid) is not None  # the key is back
    async with world.stack() as stack:
        async with world.db.sessions() as session:
            assert await session.get(ReferralKey, rid) is None
            assert (await session.get(ErasedReferral, rid)) is not None
        assert not [r.sealed for r in await world.records(rid) if r.sealed]  # no erasure record
        r = await stack.client.get(f"/v1/audit/referrals/{rid}/timeline", headers=auditor)
        assert [s.get("erased") for s in r.json()["events"]] == [True, True, True, True]
        r = await stack.client.get("/v1/audit/verify", headers=auditor)
        assert r.json()["ok"] is True, r.json()
    await world.db.engine.dispose()
    files = raw_files(world.db)
    assert CANARY.encode() not in files and LEGACY_CANARY.encode() not in files
    assert wrapped not in files


@pytest.mark.parametrize("prefetched", [False, True], ids=["keys-per-event", "keys-prefetched"])
async def test_appends_and_an_erasure_in_one_transaction(world: World, prefetched: bool) -> None:
    """A consumer batch appends in memory and writes once before commit: an erasure in the
    middle of the batch still empties the payloads appended before it, the records after it get
    none, and the chain verifies (a checkpoint in the same transaction signs the real head).
    The same when the batch's keys were loaded, and made, before its first event (`load_keys`,
    as the consumer does)."""
    db, vault = world.db, world.vault
    await create_all(db.engine, audit_metadata, runtime_metadata)

    def event(payload: Any, subject: str) -> CloudEvent:
        return CloudEvent.new(source="intake", payload=payload, subject=subject, agency="gp")

    withdrawn = ReferralWithdrawn(referral_id="e1", reference="NRM-2026-000001", withdrawn_by="gp")
    kept = ReferralWithdrawn(referral_id="k1", reference="NRM-2026-000002", withdrawn_by="gp")
    erased = ReferralErased(referral_id="e1", basis="retention_expired")
    before = [event(withdrawn, "e1"), event(kept, "k1"), event(withdrawn, "e1")]
    done = event(erased, "e1")
    after = [done, event(withdrawn, "e1"), event(kept, "k1")]
    async with transaction(db.sessions) as session:
        if prefetched:
            await service.load_keys(session, events=before + after, vault=vault)
        for offset, e in enumerate(before):
            await service.append(
                session, event=e, topic="nrm.referrals.v1", partition=0, offset=offset, vault=vault
            )
        assert await service.erase(
            session, referral_id="e1", basis="retention_expired", erased_at=done.time
        )
        for offset, e in enumerate(after, start=3):
            await service.append(
                session, event=e, topic="nrm.referrals.v1", partition=0, offset=offset, vault=vault
            )
        assert (await service.head(session)).sequence == 6
        settings = world.settings
        await service.checkpoint(
            session, name=settings.key_name, origin=settings.origin, vault=vault
        )
    e1 = await world.records("e1")
    assert [(r.sequence, r.sealed is None) for r in e1] == [
        (1, True),
        (3, True),
        (4, False),  # the erasure record: under the shared key, says only what was erased
        (5, True),
    ]
    assert [(r.sequence, r.sealed is None) for r in await world.records("k1")] == [
        (2, False),
        (6, False),
    ]
    async with transaction(db.sessions) as session:
        vkey = await service.public_key(session, name=world.settings.key_name, vault=vault)
    async with db.sessions() as session:
        assert await session.get(ReferralKey, "e1") is None
        result = await service.verify(session, vkey=vkey, vault=vault)
    assert (result["ok"], result["records"]) == (True, 6)
    assert result["checkpoints"] == {"checked": 1, "bad": []}
    assert result["payloads"] == {"checked": 3, "erased": 3, "first_bad_sequence": None}
