"""The exchange as production runs it, for fault tests: every service in a process of its own
(`nrm serve <service>`, as one container each), router and notify twice, against a broker this
test owns (so it can freeze it) and a database per service. Tests kill, restart and starve
these processes while a load runs, then count effects in the services' databases."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from sqlalchemy import func
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

from contracts.topics import CASE_EVENTS, CATALOGUE, DEADLETTER, REFERRALS, ROUTING
from services.audit import service as audit_service
from services.audit.models import Record
from services.common.broker import EmbeddedBroker, free_port
from services.common.bus import ensure_topics
from services.common.crypto import Vault
from services.common.db import session_factory
from services.common.models import OutboxRecord
from services.common.routes import ROUTES
from services.intake.models import Recipient
from services.notify.models import Delivery
from services.router.models import RoutedReferral
from services.stack import SERVICES
from tests.conftest import PG_URL
from tests.e2e.conftest import ROOT
from tests.e2e.test_rules import victim
from tests.support import answers, service_databases, wait_for

# The load: a victim referral the example policy sends to exactly these two agencies.
SUBMITTER = "labour-insp"
BODY = victim(region="KZ-79")
RECIPIENTS = {"ngo-south", "mvd-ctu"}
# Every consumer group of the services (`runtime.consume` names) and its topics: nothing is
# left to happen once each has committed up to the end of its topics and every outbox is empty.
GROUPS = {
    "intake.routing": [ROUTING.name],
    "intake.case-events": [CASE_EVENTS.name],
    "router.referrals": [REFERRALS.name],
    "notify.referrals": [REFERRALS.name],
    "router.case-events": [CASE_EVENTS.name],
    "notify.routing": [ROUTING.name],
    "audit": [t.name for t in CATALOGUE if t is not DEADLETTER],
    "insights": [REFERRALS.name, ROUTING.name, CASE_EVENTS.name],
}


@dataclass
class Instance:
    service: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Cluster:
    """Service processes on one broker; `url(path)` finds a live instance that answers it."""

    kind: str
    broker: EmbeddedBroker
    data_dir: Path
    env: dict[str, str]
    database_url: str
    instances: list[Instance] = field(default_factory=list)
    _tokens: dict[str, tuple[float, dict[str, str]]] = field(default_factory=dict)

    async def start(
        self, service: str, *, migrate: bool = False, port: int | None = None
    ) -> Instance:
        """One more process of `service`, returned once it is ready (database, broker, groups)."""
        port = port or free_port()
        log = self.data_dir / f"{service}-{port}.log"
        command = [sys.executable, "-m", "services.cli", "serve", service]
        # Popen, not asyncio's: the process outlives this event loop (the cluster is shared by
        # a module's tests, each on its own loop), and spawning does not block.
        with log.open("wb") as out:
            proc = subprocess.Popen(  # noqa: ASYNC220
                [*command, "--migrate"] if migrate else command,
                cwd=ROOT,
                env={**self.env, "NRM_PORT": str(port)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        instance = Instance(service, port, proc, log)
        self.instances.append(instance)

        ready = f"{instance.url}/readyz"
        await wait_for(lambda: answers(ready, proc, log), timeout=120, interval=0.2)
        return instance

    async def stop(self, instance: Instance, sig: signal.Signals = signal.SIGTERM) -> int:
        """Signal an instance and wait for it to end; its exit code."""
        instance.proc.send_signal(sig)
        code = await asyncio.to_thread(instance.proc.wait, 60)
        self.instances.remove(instance)
        return code

    def running(self, service: str) -> list[Instance]:
        return [i for i in self.instances if i.service == service and i.alive]

    def url(self, path: str) -> str:
        service = next(
            s for s, prefixes in ROUTES.items() if any(path.startswith(p) for p in prefixes)
        )
        return self.running(service)[0].url + path

    async def headers(self, client_id: str) -> dict[str, str]:
        """A bearer token for a seeded client, from identity's token endpoint (cached)."""
        expires, headers = self._tokens.get(client_id, (0.0, {}))
        if expires - time.time() < 60:
            secrets = json.loads((self.data_dir / "credentials.json").read_text())
            async with httpx.AsyncClient() as client:
                r = await client.post(
                    self.url("/oauth/token"),
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, secrets[client_id]),
                )
            r.raise_for_status()
            token = r.json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            self._tokens[client_id] = (time.time() + token["expires_in"], headers)
        return headers

    async def rows(self, service: str, query: Any) -> list[Any]:
        """Read a service's database (a connection per call: tests run on loops of their own)."""
        engine = create_async_engine(self.database_url.format(service=service), poolclass=NullPool)
        try:
            async with session_factory(engine)() as session:
                return list((await session.exec(query)).all())
        finally:
            await engine.dispose()

    async def audit_payloads(self, ids: list[str]) -> list[tuple[str, str, Any]]:
        """(subject, type, opened payload) of audit's records of these referrals: payloads are
        sealed under each referral's key, opened with audit's master keys."""
        vault = Vault.from_config(json.loads(self.env["NRM_MASTER_KEYS"]), "k1")
        url = self.database_url.format(service="audit")
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with session_factory(engine)() as session:
                found = await session.exec(select(Record).where(col(Record.subject).in_(ids)))
                payloads = audit_service.Payloads(session, vault)
                return [(r.subject or "", r.type, await payloads.of(r)) for r in found]
        finally:
            await engine.dispose()

    async def scalar(self, service: str, query: Any) -> Any:
        (value,) = await self.rows(service, query)
        return value

    async def quiet(self) -> bool:
        """Nothing left to happen: every outbox relayed, every group at the end of its topics."""
        for service in SERVICES:
            unsent = select(func.count()).where(col(OutboxRecord.published_at).is_(None))
            if await self.scalar(service, unsent):
                return False
        for group, topics in GROUPS.items():
            # A group member that never joins, to read the group's committed offsets.
            reader = AIOKafkaConsumer(bootstrap_servers=self.broker.bootstrap, group_id=group)
            await reader.start()
            try:
                partitions = [
                    TopicPartition(t, p)
                    for t in topics
                    for p in reader.partitions_for_topic(t) or ()
                ]
                ends = await reader.end_offsets(partitions)
                for tp in partitions:
                    if ends[tp] and (await reader.committed(tp) or 0) < ends[tp]:
                        return False
            finally:
                await reader.stop()
        return True


async def submit_at(
    cluster: Cluster, *, rate: float, seconds: float, ids: list[str] | None = None
) -> list[str]:
    """Submit referrals at a steady rate; the ids of those accepted (every POST must be),
    appended to `ids` as they come."""
    ids = [] if ids is None else ids
    headers = await cluster.headers(SUBMITTER)
    async with httpx.AsyncClient(timeout=30) as client:
        start = time.monotonic()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            r = await client.post(cluster.url("/v1/referrals"), json=BODY, headers=headers)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
    return ids


async def every_effect_once(cluster: Cluster, ids: list[str], *, timeout: float) -> None:
    """Each referral routed once, delivered once to each recipient, each step audited once,
    and the submitter told of each delivery, with nothing still in flight afterwards."""
    expected = len(ids) * len(RECIPIENTS)

    async def done() -> bool:
        notified = select(func.count()).where(
            col(Record.subject).in_(ids), Record.type == "delivery.notified"
        )
        told = select(func.count()).where(
            col(Recipient.referral_id).in_(ids), Recipient.status == "notified"
        )
        return (
            await cluster.scalar("audit", notified) >= expected
            and await cluster.scalar("intake", told) >= expected
            and await cluster.quiet()
        )

    await wait_for(done, timeout=timeout, interval=0.5)

    audited: Counter[tuple[str, ...]] = Counter()
    for subject, kind, data in await cluster.audit_payloads(ids):
        if kind == "delivery.notified":  # one per channel a delivery reached
            audited[subject, kind, data["channel"], data["agency"]] += 1
        audited[subject, kind] += 1
    for rid in ids:
        assert audited[rid, "referral.submitted"] == 1, rid
        assert audited[rid, "referral.routed"] == 1, rid
        for agency in RECIPIENTS:
            assert audited[rid, "delivery.notified", "inbox", agency] == 1, (rid, agency)
            assert audited[rid, "delivery.notified", "webhook", agency] <= 1, (rid, agency)
    routed = select(func.count()).where(col(RoutedReferral.referral_id).in_(ids))
    assert await cluster.scalar("router", routed) == len(ids)
    deliveries = await cluster.rows(
        "notify",
        select(Delivery.referral_id, Delivery.agency).where(col(Delivery.referral_id).in_(ids)),
    )
    assert sorted(deliveries) == sorted((rid, a) for rid in ids for a in RECIPIENTS)
    async with httpx.AsyncClient() as client:
        r = await client.get(
            cluster.url("/v1/audit/verify"), headers=await cluster.headers("auditor")
        )
    assert r.status_code == 200 and r.json()["ok"] is True, r.text


@contextlib.contextmanager
def running_cluster(
    data_dir: Path,
    *,
    pg_url: str | None,
    twice: Iterable[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """A broker and every service in a process of its own (those in `twice` two of each), on a
    PostgreSQL database per service next to `pg_url`, else SQLite files in `data_dir`."""
    with service_databases(pg_url, "cluster") as url:
        yield from _cluster(
            data_dir, url or f"sqlite+aiosqlite:///{data_dir}/{{service}}.db", twice, env
        )


def _cluster(
    data_dir: Path, database_url: str, twice: Iterable[str], env: dict[str, str] | None
) -> Iterator[Cluster]:
    broker = EmbeddedBroker(log_file=data_dir / "broker.log")
    broker.start_process()
    identity_port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NRM_")},
        "NRM_DATA_DIR": str(data_dir),
        "NRM_DATABASE_URL": database_url,
        "NRM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "NRM_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "NRM_KAFKA_FETCH_MAX_WAIT_MS": "100",  # as tests/conftest.py sets for every stack
        "NRM_AUTH_ISSUER": f"http://127.0.0.1:{identity_port}",
        # As in production: master keys from the environment (a secret), the same for every
        # instance of a service.
        "NRM_MASTER_KEYS": json.dumps({"k1": Vault.generate_key()}),
        # Eight processes beside the rest of the suite: stay well inside max_connections (100).
        "NRM_DATABASE_POOL_SIZE": "2",
        "NRM_DATABASE_MAX_OVERFLOW": "2",
        **(env or {}),
    }
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    cluster = Cluster(kind, broker, data_dir, environment, database_url)

    async def start() -> None:
        await broker.wait_ready()
        await ensure_topics(broker.bootstrap, partitions=3)
        # Identity on the port its issuer names; then the others at once, each migrating its
        # own database (one after another, the eight starts took over two minutes on a loaded
        # machine); then the second instances, on migrated databases.
        await cluster.start("identity", migrate=True, port=identity_port)
        others = ("intake", "router", "notify", "audit", "insights")
        await asyncio.gather(*(cluster.start(s, migrate=True) for s in others))
        await asyncio.gather(*(cluster.start(s) for s in twice))

    try:
        asyncio.run(start())
        yield cluster
    finally:
        for instance in cluster.instances:
            if instance.alive:
                instance.proc.send_signal(signal.SIGTERM)
        for instance in cluster.instances:
            try:
                instance.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                instance.proc.kill()
        broker.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_crash.py: a pytest-xdist group per database kind, so each kind's tests share one
    `nrm up` on one worker while the kinds run side by side (pytest drops marks given on
    module-scoped parameters, so they are added here, before xdist reads them)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if item.nodeid.startswith("tests/faults/test_crash.py") and callspec is not None:
            item.add_marker(pytest.mark.xdist_group(f"crash-{callspec.params['up']}"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """PostgreSQL when the tests have it (a database per service, as in production), else a
    SQLite file per service shared by that service's processes; router and notify twice."""
    data_dir = tmp_path_factory.mktemp("cluster")
    env = {
        # Webhook retries a few seconds apart, so a receiver back after a minute is caught up
        # promptly (the horizon stays a day).
        "NRM_NOTIFY_WEBHOOK_BACKOFF_SECONDS": "1",
        "NRM_NOTIFY_WEBHOOK_BACKOFF_CAP_SECONDS": "4",
        "NRM_NOTIFY_WEBHOOK_DISABLE_AFTER": "1000",
        "NRM_NOTIFY_WEBHOOK_ALLOWED_SCHEMES": '["http"]',
        "NRM_NOTIFY_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    with running_cluster(data_dir, pg_url=PG_URL, twice=("router", "notify"), env=env) as c:
        yield c
