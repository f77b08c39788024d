"""Throttling of failed authentication: at `POST /oauth/token` per client id at one source
address and per address; at sign-in per person (or per browser, `signin.py`) and per address.

Each key has a bucket of `burst` failures that refills at `burst / window` per second; a key
whose bucket is empty is answered 429 with `Retry-After` (without checking its secret, which is
what an argon2 flood would cost) until a failure's worth has refilled. Written by hand: the
libraries at hand count requests, and only failures should count here. In memory, per instance.
"""

import math
import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # monotonic time `tokens` was computed


class FailureThrottle:
    def __init__(self, *, burst: int, window: float, max_keys: int = 100_000) -> None:
        self.burst = burst
        self.rate = burst / window  # failures forgiven per second
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_keys = max_keys

    def _level(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.burst)
        return min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)

    def retry_after(self, key: str, *, now: float | None = None) -> int | None:
        """Seconds until `key` may try again, or None if it may now."""
        now = time.monotonic() if now is None else now
        level = self._level(key, now)
        if level >= 1:
            return None
        return max(1, math.ceil((1 - level) / self.rate))

    def failed(self, key: str, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._buckets[key] = _Bucket(tokens=max(0.0, self._level(key, now) - 1), at=now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            # Forget the least recently failed key (its bucket is the likeliest to be full).
            self._buckets.popitem(last=False)


def client_key(client_id: str, source: str) -> str:
    """The token endpoint's per-client key: the client id at one address. Client ids are not
    secret, so a bucket per id alone let anyone lock an agency's integration out by failing
    under its id; the secret cannot be guessed from many addresses instead (short secrets are
    refused), and each address has its own bucket as well."""
    return f"{client_id} {source}"


class TokenThrottles:
    """Two throttles: per client (or person) and per source address."""

    def __init__(self, *, per_client: int, per_address: int, window: float) -> None:
        self.clients = FailureThrottle(burst=per_client, window=window)
        self.addresses = FailureThrottle(burst=per_address, window=window)

    def retry_after(self, *, client_id: str, source: str) -> int | None:
        waits = [
            w
            for w in (self.clients.retry_after(client_id), self.addresses.retry_after(source))
            if w is not None
        ]
        return max(waits) if waits else None

    def failed(self, *, client_id: str | None, source: str) -> None:
        """Count a failure; `client_id` None (no client named): only the address's."""
        if client_id is not None:
            self.clients.failed(client_id)
        self.addresses.failed(source)
