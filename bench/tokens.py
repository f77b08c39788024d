"""Token issuance (POST /oauth/token over HTTP) and validation (TokenVerifier.verify) rates.

    .venv/bin/python bench/tokens.py [--tokens 400] [--concurrency 8] [--validations 5000]

Issuance runs the real identity app under uvicorn on loopback with an embedded broker and a
SQLite database; requests come from a separate process so the client is not measured.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import serve_http
from services.common.auth import TokenVerifier
from services.common.broker import EmbeddedBroker, free_port


def serve(data_dir: str, port: int, bootstrap: str) -> None:
    from services.identity.app import create_app
    from services.identity.settings import IdentitySettings

    settings = IdentitySettings(data_dir=Path(data_dir), auth_issuer=f"http://127.0.0.1:{port}")
    config = Path(__file__).resolve().parents[1] / "deploy" / "config" / "agencies.yaml"
    app = create_app(
        settings,
        bootstrap=bootstrap,
        seed_from=config,
        credentials_file=Path(data_dir) / "credentials.json",
    )
    serve_http(app, port)


def load(
    base: str, secret: str, tokens: int, concurrency: int, out: "multiprocessing.Queue[float]"
) -> None:
    """Runs in its own process; aiohttp, since httpx tops out near 300 requests/s here."""
    import aiohttp

    async def main() -> float:
        auth = aiohttp.BasicAuth("gp", secret)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(base_url=base, connector=connector, auth=auth) as client:
            remaining = tokens

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    data = {"grant_type": "client_credentials"}
                    async with client.post("/oauth/token", data=data) as r:
                        r.raise_for_status()
                        await r.read()

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - t0

    out.put(asyncio.run(main()))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--validations", type=int, default=5000)
    parser.add_argument("--out", default="bench/results-tokens.json")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedBroker() as broker:
            server = multiprocessing.Process(target=serve, args=(tmp, port, broker.bootstrap))
            server.start()
            try:
                async with httpx.AsyncClient(base_url=base) as client:
                    for _ in range(200):
                        try:
                            if (await client.get("/readyz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await asyncio.sleep(0.05)
                    secret = json.loads((Path(tmp) / "credentials.json").read_text())["gp"]
                    queue: multiprocessing.Queue[float] = multiprocessing.Queue()
                    loader = multiprocessing.Process(
                        target=load, args=(base, secret, args.tokens, args.concurrency, queue)
                    )
                    loader.start()
                    issue_seconds = queue.get(timeout=600)
                    loader.join()
                    r = await client.post(
                        "/oauth/token",
                        data={"grant_type": "client_credentials"},
                        auth=("gp", secret),
                    )
                    token = r.json()["access_token"]
                    rates = {}
                    for label, cache_size in (("cold", 0), ("cached", 10_000)):
                        verifier = TokenVerifier(
                            issuer=base,
                            audience="nrm-exchange",
                            jwks=lambda: _jwks(client),
                            cache_size=cache_size,
                        )
                        await verifier.verify(token)  # fetch the key set
                        t0 = time.perf_counter()
                        for _ in range(args.validations):
                            await verifier.verify(token)
                        rates[label] = args.validations / (time.perf_counter() - t0)
            finally:
                server.terminate()
                server.join()
    results = {
        "tokens_issued": args.tokens,
        "issue_concurrency": args.concurrency,
        "tokens_per_s": round(args.tokens / issue_seconds),
        "validations": args.validations,
        "validations_per_s_signature_checked": round(rates["cold"]),
        "validations_per_s_cached_token": round(rates["cached"]),
        "cpus": os.cpu_count(),
    }
    print(" | ".join(results))
    print(" | ".join(str(v) for v in results.values()))
    Path(args.out).write_text(json.dumps({"tokens": results}, indent=2) + "\n")


async def _jwks(client: httpx.AsyncClient) -> dict[str, object]:
    data: dict[str, object] = (await client.get("/.well-known/jwks.json")).json()
    return data


if __name__ == "__main__":
    asyncio.run(main())
