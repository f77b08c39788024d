"""The whole exchange as an operator runs it: `nrm up` in a subprocess (every service, the
embedded broker), on SQLite files or on a PostgreSQL database per service, used over HTTP only
with the client credentials it generated."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from services.common.broker import free_port
from tests.conftest import DATABASES, PG_URL
from tests.support import answers, service_databases, wait_for

ROOT = Path(__file__).resolve().parents[2]
AGENCIES = (
    "mvd-ctu",
    "gp",
    "labour-insp",
    "child-rights",
    "anti-corruption",
    "ngo-north",
    "ngo-south",
    "nrm-coordinator",
)


@dataclass
class Exchange:
    """A running stack: its address, its log, and tokens for the seeded clients."""

    kind: str
    base_url: str
    data_dir: Path
    secrets: dict[str, str]
    pid: int
    _tokens: dict[str, tuple[float, dict[str, str]]] = field(default_factory=dict)

    def headers(self, client_id: str, **extra: str) -> dict[str, str]:
        """A bearer token for a seeded client (one per agency, `auditor`, `admin`), cached."""
        expires, headers = self._tokens.get(client_id, (0.0, {}))
        if expires - time.time() < 60:
            r = httpx.post(
                f"{self.base_url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, self.secrets[client_id]),
            )
            r.raise_for_status()
            token = r.json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            self._tokens[client_id] = (time.time() + token["expires_in"], headers)
        return {**headers, **extra}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30)

    @property
    def log(self) -> str:
        return (self.data_dir / "stack.log").read_text(errors="replace")


def start_exchange(kind: str, data_dir: Path, env: dict[str, str]) -> Iterator[Exchange]:
    """`nrm up` on a free port until healthy; SIGINT (and a clean exit) afterwards."""
    port = free_port()
    environment = {
        **os.environ,
        "NRM_DATA_DIR": str(data_dir),
        "NRM_PORT": str(port),
        "NRM_KAFKA_SESSION_TIMEOUT_MS": "2000",
        # Six services' pools beside the rest of the suite: stay inside max_connections (100).
        "NRM_DATABASE_POOL_SIZE": "4",
        "NRM_DATABASE_MAX_OVERFLOW": "4",
        **env,
    }
    environment.pop("NRM_KAFKA_BOOTSTRAP", None)
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "stack.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        log_file = data_dir / "stack.log"
        asyncio.run(wait_for(lambda: answers(f"{base}/healthz", proc, log_file), timeout=180))
        secrets = json.loads((data_dir / "credentials.json").read_text())
        yield Exchange(kind, base, data_dir, secrets, proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, f"the stack exited with {code}; see {data_dir}/stack.log"


# For modules whose subject is the HTTP surface rather than storage (object-level authorisation,
# headers and revocation, the statistics API): the embedded default only. Each service's storage
# is tested on both databases in tests/integration, and the whole exchange on PostgreSQL by the
# rules, people and crash modules; a second stack here cost about 25-50 CPU-seconds per module
# on a 2-core CI machine that runs the suite within 15 minutes.
SQLITE_ONLY = pytest.mark.parametrize("exchange", ["sqlite"], indirect=True)


@pytest.fixture(scope="module", params=DATABASES)
def exchange(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Exchange]:
    """One stack per database kind and test module (tests create their own referrals)."""
    kind: str = request.param
    data_dir = tmp_path_factory.mktemp(f"exchange-{kind}")
    with service_databases(PG_URL if kind == "postgresql" else None, "e2e") as url:
        yield from start_exchange(kind, data_dir, {"NRM_DATABASE_URL": url} if url else {})
