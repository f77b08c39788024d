"""The `nrm` command."""

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator

import typer
import uvicorn
from fastapi import FastAPI

from contracts import export
from services.common.app import create_app
from services.common.broker import EmbeddedBroker
from services.common.bus import ensure_topics
from services.common.logs import configure_logging
from services.common.settings import Settings

app = typer.Typer(help="NRM Exchange: interagency referral exchange.", no_args_is_help=True)
contracts_app = typer.Typer(help="Event and body contracts.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")


@contracts_app.command("export")
def contracts_export(
    check: bool = typer.Option(False, "--check", help="Only report stale files; exit 1 if any."),
) -> None:
    """Regenerate contracts/schemas/*.json and contracts/asyncapi.yaml from the models."""
    if check:
        stale = export.stale()
        for path in stale:
            typer.echo(f"stale: {path}")
        raise typer.Exit(1 if stale else 0)
    changed = export.write()
    typer.echo(f"wrote {len(export.rendered())} files ({len(changed)} changed)")


@app.command()
def broker(port: int = typer.Option(9092, help="Loopback port to listen on.")) -> None:
    """Run the embedded Tansu broker in the foreground (Ctrl-C stops it)."""
    configure_logging()

    async def _main() -> None:
        async with EmbeddedBroker(port=port) as b:
            await ensure_topics(b.bootstrap, partitions=Settings().kafka_partitions)
            typer.echo(f"broker ready on {b.bootstrap}; topics created")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()

    asyncio.run(_main())


@app.command()
def up() -> None:
    """Start the embedded stack: broker (unless NRM_KAFKA_BOOTSTRAP is set), topics, HTTP."""
    settings = Settings()
    configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded: EmbeddedBroker | None = None

    async def _broker_ready() -> None:
        assert bootstrap is not None
        await ensure_topics(bootstrap, partitions=settings.kafka_partitions)

    bootstrap = settings.kafka_bootstrap

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal embedded, bootstrap
        if bootstrap is None:
            embedded = EmbeddedBroker(log_file=settings.data_dir / "broker.log")
            await embedded.start()
            bootstrap = embedded.bootstrap
        await ensure_topics(bootstrap, partitions=settings.kafka_partitions)
        typer.echo(f"NRM Exchange on http://127.0.0.1:{settings.port} (broker {bootstrap})")
        try:
            yield
        finally:
            if embedded is not None:
                embedded.stop()

    web = create_app(title="NRM Exchange", checks=[("broker", _broker_ready)], lifespan=lifespan)
    uvicorn.run(web, host="127.0.0.1", port=settings.port, log_config=None)


def main() -> None:  # pragma: no cover
    sys.exit(app())
