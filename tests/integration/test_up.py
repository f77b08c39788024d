"""`nrm up` as a subprocess: the whole exchange in one process on a free port, used over HTTP
only, then stopped with SIGINT: a clean exit and no child process left behind."""

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from services.cli import app as cli
from services.common.broker import EmbeddedBroker, free_port
from tests.support import alive, children, wait_for
from tests.unit.test_contracts import REFERRAL_EXAMPLE

ROOT = Path(__file__).resolve().parents[2]


def credentials(data_dir: Path) -> tuple[dict[str, str], int]:
    """The secrets `nrm up` wrote, and the file's permission bits."""
    path = data_dir / "credentials.json"
    return json.loads(path.read_text()), path.stat().st_mode & 0o777


async def test_up_serves_everything_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "NRM_DATA_DIR": str(tmp_path),
        "NRM_PORT": str(port),
        "NRM_KAFKA_SESSION_TIMEOUT_MS": "2000",
    }
    env.pop("NRM_KAFKA_BOOTSTRAP", None)
    env.pop("NRM_DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "up",
        "--demo",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(healthy, timeout=90)
            health = (await client.get("/healthz")).json()
            assert set(health["services"]) == {
                "identity",
                "intake",
                "router",
                "notify",
                "audit",
                "insights",
            }
            broker_pids = children(proc.pid)
            assert broker_pids, "the embedded broker runs as a child process"

            secrets, mode = credentials(tmp_path)
            assert mode == 0o600

            async def token(client_id: str) -> dict[str, str]:
                r = await client.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, secrets[client_id]),
                )
                assert r.status_code == 200, r.text
                return {"Authorization": f"Bearer {r.json()['access_token']}"}

            inspector, shelter, auditor = (
                await token("labour-insp"),
                await token("ngo-south"),
                await token("auditor"),
            )
            r = await client.post(
                "/v1/referrals",
                content=REFERRAL_EXAMPLE,
                headers={"content-type": "application/json", **inspector},
            )
            assert r.status_code == 201, r.text
            rid = r.json()["id"]

            async def in_inbox() -> bool:
                items = (await client.get("/v1/inbox", headers=shelter)).json()["items"]
                return any(i["referral_id"] == rid for i in items)

            await wait_for(in_inbox, timeout=30)
            (item,) = [
                i
                for i in (await client.get("/v1/inbox", headers=shelter)).json()["items"]
                if i["referral_id"] == rid
            ]
            assert (item["disclosure"], item["rule"]) == ("support", "services-shelter")
            r = await client.post(
                f"/v1/deliveries/{item['delivery_id']}/acknowledge", headers=shelter
            )
            assert r.status_code == 200

            async def acknowledged() -> bool:
                r = await client.get(f"/v1/referrals/{rid}/status", headers=inspector)
                statuses = {x["agency"]: x["status"] for x in r.json()["recipients"]}
                return statuses.get("ngo-south") == "acknowledged"

            await wait_for(acknowledged, timeout=30)

            async def audited() -> bool:
                r = await client.get(f"/v1/audit/referrals/{rid}/timeline", headers=auditor)
                types = [e["type"] for e in r.json()["events"]]
                return "referral.acknowledged" in types

            await wait_for(audited, timeout=30)
            verify: dict[str, Any] = (await client.get("/v1/audit/verify", headers=auditor)).json()
            assert verify["ok"] is True

            # The guided demo, against the same stack, over HTTP only; it checks every step.
            demo = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.cli",
                "demo",
                "--url",
                base,
                "--credentials",
                str(tmp_path / "credentials.json"),
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
            )
            output, _ = await asyncio.wait_for(demo.communicate(), timeout=120)
            text = output.decode()
            assert demo.returncode == 0, text
            assert "escalated to nrm-coordinator" in text
            assert "ngo-north  support   identity: shown, narrative: hidden" in text
            assert "Audit verification: ok" in text
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 0
    assert not alive(broker_pids)


def test_serve_refuses_without_a_broker_or_with_an_unknown_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()
    monkeypatch.delenv("NRM_KAFKA_BOOTSTRAP", raising=False)
    r = runner.invoke(cli, ["serve", "router"])
    assert r.exit_code == 2 and "NRM_KAFKA_BOOTSTRAP is required" in r.output
    monkeypatch.setenv("NRM_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    r = runner.invoke(cli, ["serve", "billing"])
    assert r.exit_code == 2 and "unknown service 'billing'" in r.output


async def test_serve_runs_one_service(tmp_path: Path, own_broker: EmbeddedBroker) -> None:
    port = free_port()
    env = {
        **os.environ,
        "NRM_DATA_DIR": str(tmp_path),
        "NRM_PORT": str(port),
        "NRM_KAFKA_BOOTSTRAP": own_broker.bootstrap,
        "NRM_KAFKA_SESSION_TIMEOUT_MS": "2000",
    }
    env.pop("NRM_DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "serve",
        "audit",
        "--migrate",  # nrm serve creates no tables: production databases are migrated
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(ready, timeout=60)
            # Only the audit service is here; it wants a token from the configured issuer.
            assert (await client.get("/v1/audit/verify")).status_code == 401
            assert (await client.get("/v1/inbox")).status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 0
