"""Faults under load through the whole pipeline (intake → router → notify → audit, each service
its own process): after each, every referral is routed once, delivered once to each recipient,
audited once per step, and the audit chain verifies. Nothing lost, nothing duplicated."""

import asyncio
import signal
import uuid

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import col, select

from services.audit.models import Record
from services.intake.models import Referral
from tests.conftest import PG_URL
from tests.faults.conftest import BODY, SUBMITTER, Cluster, every_effect_once, submit_at
from tests.support import Receiver, connection_count, drop_connections, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults"), pytest.mark.timeout(300)]


async def audited(cluster: Cluster, ids: list[str]) -> int:
    """Audit records of these referrals so far."""
    query = select(func.count()).where(col(Record.subject).in_(list(ids)))
    return int(await cluster.scalar("audit", query))


async def test_broker_frozen_30s_under_steady_load(cluster: Cluster) -> None:
    ids: list[str] = []
    load = asyncio.create_task(submit_at(cluster, rate=4, seconds=45, ids=ids))

    async def flowing() -> bool:
        return len(ids) > 0 and await audited(cluster, ids[:5]) >= 5 * 4

    await wait_for(flowing, timeout=30, interval=0.2)
    cluster.broker.freeze()
    before = len(ids)
    try:
        await asyncio.sleep(30)  # the outage itself; intake keeps accepting meanwhile
        during = len(ids) - before
    finally:
        cluster.broker.thaw()
    ids = await load
    assert during >= 30  # referrals accepted while the broker was frozen (~120 at 4/s)
    await every_effect_once(cluster, ids, timeout=120)


async def test_router_and_notify_killed_mid_stream_beside_a_second_instance(
    cluster: Cluster,
) -> None:
    assert len(cluster.running("router")) == len(cluster.running("notify")) == 2
    ids: list[str] = []
    load = asyncio.create_task(submit_at(cluster, rate=8, seconds=20, ids=ids))

    async def flowing() -> bool:
        return len(ids) >= 40 and await audited(cluster, ids[:20]) >= 20 * 4

    await wait_for(flowing, timeout=30, interval=0.2)
    for service in ("router", "notify"):
        assert await cluster.stop(cluster.running(service)[0], signal.SIGKILL) == -signal.SIGKILL
    ids = await load
    await every_effect_once(cluster, ids, timeout=120)
    # Back to two of each for the next test.
    await asyncio.gather(cluster.start("router"), cluster.start("notify"))


async def test_intake_and_audit_killed_mid_batch_and_restarted(cluster: Cluster) -> None:
    """A batch of 300 submissions with Idempotency-Keys, retried by the client until accepted
    (as an integrator would); audit and then intake are SIGKILLed in the middle of it and
    started again. Each key yields exactly one referral, and each of its effects once."""
    keys = [str(uuid.uuid4()) for _ in range(300)]
    accepted: dict[str, str] = {}
    headers = await cluster.headers(SUBMITTER)
    before = await cluster.scalar("intake", select(func.count()).select_from(Referral))

    async def submit(client: httpx.AsyncClient, key: str) -> None:
        async def done() -> bool:
            try:
                r = await client.post(
                    cluster.url("/v1/referrals"),
                    json=BODY,
                    headers={**headers, "Idempotency-Key": key},
                )
            except (httpx.TransportError, IndexError):  # IndexError: no intake running
                return False
            if r.status_code >= 500:
                return False
            assert r.status_code in (200, 201), r.text
            accepted[key] = r.json()["id"]
            return True

        await wait_for(done, timeout=90, interval=0.2)

    async def batch() -> None:
        limit = asyncio.Semaphore(8)
        async with httpx.AsyncClient(timeout=10) as client:

            async def one(key: str) -> None:
                async with limit:
                    await submit(client, key)

            await asyncio.gather(*(one(k) for k in keys))

    load = asyncio.create_task(batch())
    # Audit dies with the batch in flight, then intake; both come back while it goes on.
    await wait_for(lambda: _true(len(accepted) >= 30), timeout=30)
    (audit,) = cluster.running("audit")
    assert await cluster.stop(audit, signal.SIGKILL) == -signal.SIGKILL
    await wait_for(lambda: _true(len(accepted) >= 90), timeout=30)
    (intake,) = cluster.running("intake")
    assert await cluster.stop(intake, signal.SIGKILL) == -signal.SIGKILL
    assert len(accepted) < len(keys)  # killed mid-batch
    await cluster.start("intake")
    await cluster.start("audit")
    await load

    ids = sorted(set(accepted.values()))
    assert len(ids) == len(keys)  # one referral per key, none lost
    after = await cluster.scalar("intake", select(func.count()).select_from(Referral))
    assert after - before == len(keys)  # and no stray ones from a retried POST
    await every_effect_once(cluster, ids, timeout=120)


async def test_webhook_receiver_down_for_a_minute(cluster: Cluster) -> None:
    """ngo-south's endpoint refuses connections for 60 s; every delivery reaches it once after."""
    receiver = Receiver()  # not listening yet
    admin = await cluster.headers("admin")
    async with httpx.AsyncClient() as client:
        r = await client.put(
            cluster.url("/v1/agencies/ngo-south/webhook"),
            json={"url": receiver.url},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        secret = r.json()["secret"]
        try:
            ids = await submit_at(cluster, rate=2, seconds=10)

            async def retrying() -> bool:
                r = await client.get(
                    cluster.url("/v1/agencies/ngo-south/webhook/attempts"), headers=admin
                )
                return sum(1 for a in r.json() if not a["ok"]) >= len(ids)

            await wait_for(retrying, timeout=30, interval=0.5)
            await asyncio.sleep(60)  # the outage itself
            await receiver.start()

            async def all_arrived() -> bool:
                got = {p["data"]["referral_id"] for p in receiver.unique(secret).values()}
                return got >= set(ids)

            await wait_for(all_arrived, timeout=60, interval=0.2)
            await every_effect_once(cluster, ids, timeout=60)
            ours = [p for p in receiver.unique(secret).values() if p["data"]["referral_id"] in ids]
            assert sorted(p["data"]["referral_id"] for p in ours) == sorted(ids)
            # One webhook-id per delivery, and no delivery sent twice once it got through.
            assert len(receiver.received) == len(receiver.unique(secret))
        finally:
            await client.put(
                cluster.url("/v1/agencies/ngo-south/webhook"),
                json={"url": receiver.url, "enabled": False},
                headers=admin,
            )
            await receiver.stop()


@pytest.mark.skipif(PG_URL is None, reason="needs PostgreSQL (NRM_TEST_DATABASE_URL; CI sets it)")
async def test_database_connections_dropped_under_one_service(cluster: Cluster) -> None:
    """Notify's and then router's PostgreSQL connections are terminated under load, three
    times each: the same processes carry on (no restart) and every effect happens once."""
    assert PG_URL is not None
    pids = {i.proc.pid for i in cluster.instances}
    ids: list[str] = []
    load = asyncio.create_task(submit_at(cluster, rate=8, seconds=15, ids=ids))
    await wait_for(lambda: _true(len(ids) >= 10), timeout=30)
    dropped = 0
    for service in ("notify", "notify", "notify", "router", "router", "router"):
        database = cluster.database_url.format(service=service).rsplit("/", 1)[1]
        dropped += await drop_connections(PG_URL, database)

        async def reconnected(database: str = database) -> bool:
            # The next outage only once the service has come back by itself.
            return await connection_count(PG_URL or "", database) > 0

        await wait_for(reconnected, timeout=30, interval=0.1)
    ids = await load
    assert dropped > 0
    await every_effect_once(cluster, ids, timeout=120)
    assert {i.proc.pid for i in cluster.instances if i.alive} == pids
    async with httpx.AsyncClient() as client:
        for instance in cluster.instances:
            assert (await client.get(f"{instance.url}/readyz")).status_code == 200


async def _true(value: bool) -> bool:
    return value
