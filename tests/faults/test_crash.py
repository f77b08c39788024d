"""The embedded stack as newcomers run it (`nrm up`: every service and its in-memory broker in
one process tree) ended abruptly right after a burst of referrals, then started again: every
accepted referral reaches every recipient's inbox exactly once, is audited once per step, and
the audit log verifies with nothing missing. And an event withheld from audit shows up in
`missing` until it arrives."""

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts.cloudevents import CloudEvent
from contracts.events import AccessGranted
from contracts.topics import ACCESS
from services.common.broker import free_port
from tests.conftest import DATABASES, PG_URL
from tests.e2e.conftest import ROOT
from tests.faults.conftest import BODY, RECIPIENTS, SUBMITTER
from tests.support import alive, answers, children, service_databases, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BURST = 20
GRACE_SECONDS = 3  # the stacks' NRM_AUDIT_MISSING_GRACE_SECONDS, short for the withheld event


@dataclass
class Up:
    """`nrm up` in a process group of its own (as a terminal runs it), restartable on the same
    port and data."""

    kind: str
    data_dir: Path
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[bytes] | None = None
    broker: set[int] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir / "stack.log"

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - outlives this test's loop
                [sys.executable, "-m", "services.cli", "up"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self.proc
        await wait_for(lambda: answers(f"{self.base}/healthz", proc, self.log), timeout=150)
        self.broker = children(proc.pid)  # the Tansu process, in a session of its own

    async def end(self, sig: signal.Signals) -> int:
        """Signal the whole tree: `nrm up`'s process group and, for SIGKILL, the broker too
        (a crash takes everything). Returns `nrm up`'s exit status once all are gone."""
        assert self.proc is not None and self.broker is not None
        os.killpg(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            for pid in alive(self.broker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        code = await asyncio.to_thread(self.proc.wait, 90)
        broker = self.broker

        async def broker_gone() -> bool:
            return not alive(broker)

        await wait_for(broker_gone, timeout=30)
        return code

    def bootstrap(self) -> str:
        """The embedded broker's address of the current run (from `nrm up`'s banner)."""
        found = re.findall(r"broker (127\.0\.0\.1:\d+)\)", self.log.read_text(errors="replace"))
        return str(found[-1])


# One stack per database kind, its tests on one worker (xdist group `crash-<kind>`, given in
# conftest.py: marks on module-scoped params are dropped), the kinds side by side.
@pytest.fixture(scope="module", params=DATABASES)
def up(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    kind: str = request.param
    data_dir = tmp_path_factory.mktemp(f"crash-{kind}")
    with service_databases(PG_URL if kind == "postgresql" else None, "crash") as url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NRM_")},
            "NRM_DATA_DIR": str(data_dir),
            "NRM_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "NRM_KAFKA_FETCH_MAX_WAIT_MS": "100",  # as tests/conftest.py sets for every stack
            "NRM_AUDIT_MISSING_GRACE_SECONDS": str(GRACE_SECONDS),
            "NRM_DATABASE_POOL_SIZE": "4",
            "NRM_DATABASE_MAX_OVERFLOW": "4",
            **({"NRM_DATABASE_URL": url} if url else {}),
        }
        port = free_port()
        stack = Up(kind, data_dir, {**env, "NRM_PORT": str(port)}, port)
        asyncio.run(stack.start())
        try:
            yield stack
        finally:
            if stack.proc is not None and stack.proc.poll() is None:
                asyncio.run(stack.end(signal.SIGINT))


async def token(up: Up, client_id: str) -> dict[str, str]:
    secrets = json.loads((up.data_dir / "credentials.json").read_text())
    async with httpx.AsyncClient(base_url=up.base) as client:
        r = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secrets[client_id]),
        )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def burst(up: Up) -> tuple[list[str], float]:
    """Submit `BURST` referrals at once; their ids (every one must be accepted) and the
    monotonic time of the last 201."""
    headers = await token(up, SUBMITTER)
    done: list[float] = []
    async with httpx.AsyncClient(base_url=up.base, timeout=30) as client:

        async def one() -> str:
            r = await client.post("/v1/referrals", json=BODY, headers=headers)
            done.append(time.monotonic())
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        ids = await asyncio.gather(*(one() for _ in range(BURST)))
    return list(ids), max(done)


async def crash_and_restart(up: Up, sig: signal.Signals, delay: float) -> None:
    ids, last = await burst(up)
    await asyncio.sleep(max(0.0, last + delay - time.monotonic()))  # the fault's timing
    code = await up.end(sig)
    if sig == signal.SIGINT:
        assert code == 0, f"nrm up exited with {code} on SIGINT; see {up.log}"
    await up.start()
    await every_referral_delivered_and_audited_once(up, ids)


async def every_referral_delivered_and_audited_once(up: Up, ids: list[str]) -> None:
    inbox = {agency: await token(up, agency) for agency in RECIPIENTS}
    auditor = await token(up, "auditor")
    async with httpx.AsyncClient(base_url=up.base, timeout=30) as client:

        async def items(agency: str, rid: str) -> list[Any]:
            r = await client.get("/v1/inbox", params={"referral": rid}, headers=inbox[agency])
            assert r.status_code == 200, r.text
            return list(r.json()["items"])

        async def steps(rid: str) -> Counter[str]:
            r = await client.get(f"/v1/audit/referrals/{rid}/timeline", headers=auditor)
            assert r.status_code == 200, r.text
            return Counter(e["type"] for e in r.json()["events"])

        async def verified() -> dict[str, Any]:
            r = await client.get("/v1/audit/verify", headers=auditor)
            assert r.status_code == 200, r.text
            return dict(r.json())

        async def all_there() -> bool:
            for rid in ids:
                for agency in RECIPIENTS:
                    if not await items(agency, rid):
                        return False
                audited = await steps(rid)
                if not (audited["referral.submitted"] and audited["referral.routed"]):
                    return False
            return (await verified())["ok"] is True

        await wait_for(all_there, timeout=120, interval=0.5)
        for rid in ids:
            for agency in RECIPIENTS:
                assert len(await items(agency, rid)) == 1, (rid, agency)
            audited = await steps(rid)
            assert audited["referral.submitted"] == 1, rid
            assert audited["referral.routed"] == 1, rid
            assert audited["delivery.notified"] == len(RECIPIENTS), rid
        result = await verified()
    assert result["ok"] is True and result["missing"] == {}, result
    assert result["first_bad_sequence"] is None


async def test_sigkill_50ms_after_the_last_accepted_referral(up: Up) -> None:
    await crash_and_restart(up, signal.SIGKILL, 0.05)


async def test_sigkill_200ms_after_the_last_accepted_referral(up: Up) -> None:
    await crash_and_restart(up, signal.SIGKILL, 0.2)


async def test_ctrl_c_50ms_after_the_last_accepted_referral(up: Up) -> None:
    await crash_and_restart(up, signal.SIGINT, 0.05)


async def test_an_event_withheld_from_audit_is_missing_until_it_arrives(up: Up) -> None:
    """A producer (source `probe`) whose event 3 is held back: audit holds 1, 2 and 4, so
    after the grace period verify names 3 as missing; once 3 arrives, the log is whole."""
    producer = AIOKafkaProducer(bootstrap_servers=up.bootstrap(), acks="all")
    await producer.start()

    async def publish(number: int) -> None:
        payload = AccessGranted(
            action="probe.read", resource_type="probe", agency="gp", client_id="probe"
        )
        event = CloudEvent.new(source="probe", payload=payload, subject=None, agency="gp")
        record = event.model_copy(update={"sequence": number}).to_kafka()
        await producer.send_and_wait(ACCESS.name, record.value, headers=record.headers)

    auditor = await token(up, "auditor")
    try:
        async with httpx.AsyncClient(base_url=up.base, timeout=30) as client:

            async def verify() -> dict[str, Any]:
                r = await client.get("/v1/audit/verify", headers=auditor)
                assert r.status_code == 200, r.text
                return dict(r.json())

            for number in (1, 2, 4):
                await publish(number)

            async def reported() -> bool:
                return bool((await verify())["missing"].get("probe") == [[3, 3]])

            await wait_for(reported, timeout=60, interval=0.5)
            result = await verify()
            assert result["ok"] is False
            assert result["missing"] == {"probe": [[3, 3]]}
            assert result["first_bad_sequence"] is None  # the chain itself is intact

            await publish(3)

            async def whole() -> bool:
                return (await verify())["ok"] is True

            await wait_for(whole, timeout=60, interval=0.5)
            assert (await verify())["missing"] == {}
    finally:
        await producer.stop()
