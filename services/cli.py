"""The `nrm` command: the composition root that may import every service."""

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import typer
import uvicorn
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts import export
from contracts.vocabulary import Role
from services import asyncapi
from services.common.broker import EmbeddedBroker
from services.common.bus import ensure_topics
from services.common.crypto import MissingMasterKeys, Vault
from services.common.db import create_engine, session_factory, transaction
from services.common.errors import NotFound, NRMError
from services.common.logs import configure_logging
from services.common.migrations import pending
from services.common.settings import Settings
from services.identity import people
from services.identity import service as identity
from services.identity.settings import IdentitySettings
from services.stack import (
    SERVICES,
    Stack,
    console_app,
    create_service,
    database_url,
    migrations,
)

app = typer.Typer(help="NRM Exchange: interagency referral exchange.", no_args_is_help=True)
contracts_app = typer.Typer(help="Event and body contracts.", no_args_is_help=True)
clients_app = typer.Typer(help="OAuth2 clients of the identity service.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
app.add_typer(clients_app, name="clients")
people_app = typer.Typer(help="People who sign in (identity).", no_args_is_help=True)
app.add_typer(people_app, name="people")
agencies_app = typer.Typer(help="Agencies of the identity service.", no_args_is_help=True)
app.add_typer(agencies_app, name="agencies")
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

T = TypeVar("T")


@contracts_app.command("export")
def contracts_export(
    check: bool = typer.Option(False, "--check", help="Only report stale files; exit 1 if any."),
) -> None:
    """Regenerate contracts/schemas/*.json and contracts/asyncapi.yaml from the models and the
    services' consumer and publisher declarations."""
    if check:
        stale = asyncapi.stale()
        for path in stale:
            typer.echo(f"stale: {path}")
        raise typer.Exit(1 if stale else 0)
    changed = asyncapi.write()
    typer.echo(
        f"wrote {len(export.rendered(asyncapi.operations()))} files ({len(changed)} changed)"
    )


def _in_identity_db(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the identity database (events go to its outbox), after
    applying identity's migrations."""
    from services.common.migrations import upgrade
    from services.stack import migrations

    url = IdentitySettings().database_url_for()
    upgrade(migrations("identity"), url)

    async def main() -> T:
        engine = create_engine(url)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except NRMError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


@clients_app.command("create")
def clients_create(
    client_id: str,
    agency: str = typer.Option(..., help="Agency the client acts for."),
    role: list[Role] = typer.Option([], "--role", help="Repeat for several roles."),
    redirect_uri: list[str] = typer.Option(
        [], "--redirect-uri", help="For a client that signs people in (exact URI; repeat)."
    ),
    post_logout_redirect_uri: list[str] = typer.Option([], "--post-logout-redirect-uri"),
) -> None:
    """Create a client; prints its secret once as JSON."""
    if not role and not redirect_uri:
        typer.echo("error: give --role, --redirect-uri or both", err=True)
        raise typer.Exit(2)
    try:
        for uri in [*redirect_uri, *post_logout_redirect_uri]:
            identity.check_redirect_uri(uri)
    except ValueError as exc:
        typer.echo(f"error: redirect URI: {exc}", err=True)
        raise typer.Exit(2) from None

    async def work(session: AsyncSession) -> str:
        _, secret = await identity.create_client(
            session,
            client_id=client_id,
            agency=agency,
            roles=role,
            actor="cli",
            redirect_uris=redirect_uri,
            post_logout_redirect_uris=post_logout_redirect_uri,
        )
        return secret

    typer.echo(json.dumps({"client_id": client_id, "client_secret": _in_identity_db(work)}))


@clients_app.command("rotate")
def clients_rotate(client_id: str) -> None:
    """Give a client a new secret (the old one stops working); prints it once as JSON."""

    async def work(session: AsyncSession) -> str:
        return await identity.rotate_client_secret(session, client_id=client_id, actor="cli")

    typer.echo(json.dumps({"client_id": client_id, "client_secret": _in_identity_db(work)}))


@clients_app.command("disable")
def clients_disable(client_id: str) -> None:
    """Disable a client: no new tokens, and every service refuses its current ones."""

    async def work(session: AsyncSession) -> None:
        await identity.set_client_disabled(session, client_id=client_id, disabled=True, actor="cli")

    _in_identity_db(work)
    typer.echo(f"disabled {client_id}")


@clients_app.command("enable")
def clients_enable(client_id: str) -> None:
    """Enable a disabled client (tokens issued before it was disabled stay refused)."""

    async def work(session: AsyncSession) -> None:
        await identity.set_client_disabled(
            session, client_id=client_id, disabled=False, actor="cli"
        )

    _in_identity_db(work)
    typer.echo(f"enabled {client_id}")


@agencies_app.command("disable")
def agencies_disable(agency_id: str) -> None:
    """Disable an agency: its clients' tokens are refused everywhere; routing leaves it out."""

    async def work(session: AsyncSession) -> None:
        await identity.set_agency_disabled(session, agency_id=agency_id, disabled=True, actor="cli")

    _in_identity_db(work)
    typer.echo(f"disabled {agency_id}")


@agencies_app.command("enable")
def agencies_enable(agency_id: str) -> None:
    """Enable a disabled agency again."""

    async def work(session: AsyncSession) -> None:
        await identity.set_agency_disabled(
            session, agency_id=agency_id, disabled=False, actor="cli"
        )

    _in_identity_db(work)
    typer.echo(f"enabled {agency_id}")


@audit_app.command("verify")
def audit_verify(
    export: Path = typer.Argument(..., help="A JSON Lines export (GET /v1/audit/export)."),
    key: str = typer.Option(
        ..., help="The checkpoint verifier key (GET /v1/audit/checkpoints), or a file holding it."
    ),
    grace: float = typer.Option(
        180.0, help="Seconds a gap in a source's numbers may be open at export time."
    ),
) -> None:
    """Verify an audit export offline: the hash chain, every checkpoint signature, and each
    source's event numbers (`missing`: ranges not received within the grace period)."""
    from datetime import timedelta

    from services.audit.chain import verify_export

    vkey = Path(key).read_text().strip() if Path(key).is_file() else key
    with export.open("rb") as lines:
        result = verify_export(lines, vkey, grace=timedelta(seconds=grace))
    typer.echo(json.dumps(result, indent=2))
    raise typer.Exit(0 if result["ok"] else 1)


# People (as an operator: any agency)

_OPERATOR = people.Caller(actor="cli", agency="", roles=frozenset({Role.ADMIN}))


def _person_json(row: Any, password: str | None = None) -> str:
    out = {
        "id": row.id,
        "username": row.username,
        "agency": row.agency,
        "roles": row.roles,
        "disabled": row.disabled,
        "second_factor": row.totp_confirmed,
    }
    if password is not None:
        out["password"] = password
    return json.dumps(out)


async def _person(session: AsyncSession, username: str) -> Any:
    row = await people.by_username(session, username)
    if row is None:
        raise NotFound(f"No person {username!r}.")
    return row


@people_app.command("create")
def people_create(
    username: str,
    agency: str = typer.Option(..., help="The person's agency."),
    role: list[Role] = typer.Option(..., "--role", help="Repeat for several roles."),
) -> None:
    """Create a person with a generated password, printed once as JSON; the second factor is
    enrolled at their first sign-in."""

    async def work(session: AsyncSession) -> str:
        row, password = await people.create_person(
            session,
            username=username,
            agency=agency,
            roles=role,
            password=None,
            min_length=IdentitySettings().password_min_length,
            caller=_OPERATOR,
        )
        await session.flush()
        return _person_json(row, password)

    typer.echo(_in_identity_db(work))


@people_app.command("list")
def people_list(agency: str | None = typer.Option(None, help="Only this agency's.")) -> None:
    """People as JSON lines."""

    async def work(session: AsyncSession) -> list[str]:
        rows = await people.list_people(session, caller=_OPERATOR, agency=agency)
        return [_person_json(r) for r in rows]

    for line in _in_identity_db(work):
        typer.echo(line)


def _set_person(username: str, *, disabled: bool) -> None:
    async def work(session: AsyncSession) -> None:
        row = await _person(session, username)
        await people.set_disabled(session, person=row, disabled=disabled, actor="cli")

    _in_identity_db(work)
    typer.echo(f"{'disabled' if disabled else 'enabled'} {username}")


@people_app.command("disable")
def people_disable(username: str) -> None:
    """Disable a person: their sessions and refresh tokens end, every service refuses their
    access tokens."""
    _set_person(username, disabled=True)


@people_app.command("enable")
def people_enable(username: str) -> None:
    """Enable a disabled person (tokens issued before stay refused)."""
    _set_person(username, disabled=False)


def _reset(username: str, *, password: bool, second_factor: bool) -> None:
    async def work(session: AsyncSession) -> str:
        row = await _person(session, username)
        generated = await people.reset(
            session,
            person=row,
            password=None,
            new_password_wanted=password,
            second_factor=second_factor,
            min_length=IdentitySettings().password_min_length,
            actor="cli",
        )
        return _person_json(row, generated)

    typer.echo(_in_identity_db(work))


@people_app.command("reset-password")
def people_reset_password(username: str) -> None:
    """Give a person a new generated password (printed once); their sessions end."""
    _reset(username, password=True, second_factor=False)


@people_app.command("reset-2fa")
def people_reset_second_factor(username: str) -> None:
    """Forget a person's second factor: enrolled again at their next sign-in."""
    _reset(username, password=False, second_factor=True)


@app.command()
def broker(port: int = typer.Option(9092, help="Loopback port to listen on.")) -> None:
    """Run the embedded Tansu broker in the foreground (Ctrl-C stops it)."""
    configure_logging()
    b = EmbeddedBroker(port=port)
    b.start_process()
    try:
        asyncio.run(_ready(b, Settings().kafka_partitions))
        typer.echo(f"broker ready on {b.bootstrap}; topics created")
        assert b.process is not None
        b.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


async def _ready(b: EmbeddedBroker, partitions: int) -> None:
    await b.wait_ready()
    await ensure_topics(b.bootstrap, partitions=partitions)


docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@docs_app.command("settings")
def docs_settings(
    check: bool = typer.Option(False, "--check", help="Exit 1 if docs/configuration.md is stale."),
) -> None:
    """Write docs/configuration.md from the settings classes."""
    from services import reference

    if check:
        stale = reference.stale()
        if stale:
            typer.echo(f"stale: {reference.REFERENCE}")
        raise typer.Exit(1 if stale else 0)
    reference.write()
    typer.echo(f"wrote {reference.REFERENCE}")


@app.command("demo")
def demo_command(
    url: str | None = typer.Option(None, help="The running exchange (default: NRM_PORT)."),
    credentials: Path | None = typer.Option(None, help="Default: NRM_DATA_DIR/credentials.json"),
) -> None:
    """Play a short scenario against a running exchange (`nrm up --demo`), over HTTP."""
    from services.demo import Demo, DemoFailed

    settings = Settings()
    base = url or f"http://127.0.0.1:{settings.port}"
    try:
        Demo(base, credentials or settings.data_dir / "credentials.json", out=typer.echo).run()
    except (DemoFailed, httpx.HTTPError, OSError, KeyError) as exc:
        typer.echo(f"demo failed: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None


db_app = typer.Typer(help="Service databases.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    services: list[str] | None = typer.Argument(None, help="Services to upgrade (default: all)."),
) -> None:
    """Apply each service's Alembic migrations to its database (NRM_DATABASE_URL)."""
    from services.common.migrations import upgrade

    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up, line by line
    for name in services or SERVICES:
        if name not in SERVICES:
            typer.echo(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
            raise typer.Exit(2)
        upgrade(migrations(name), database_url(name))
        typer.echo(f"{name}: upgraded")


@app.command()
def serve(
    service: str = typer.Argument(
        ..., help="identity, intake, router, notify, audit, insights or console"
    ),
    migrate: bool = typer.Option(False, help="Apply the service's migrations first."),
) -> None:
    """Run one service in this process, against NRM_KAFKA_BOOTSTRAP and its database
    (production: one container per service). Tokens are checked against NRM_AUTH_JWKS_URL.
    The console needs neither broker nor database: only the services' APIs."""
    settings = Settings()
    configure_logging(settings.log_level)
    if service == "console":
        _private_data_dir(settings)
        _serve_http(console_app(), settings=settings)
        return
    if settings.kafka_bootstrap is None:
        typer.echo("NRM_KAFKA_BOOTSTRAP is required (or use `nrm up` for the embedded stack)")
        raise typer.Exit(2)
    _private_data_dir(settings)
    if migrate:
        db_upgrade([service])
    elif service in SERVICES and pending(migrations(service), database_url(service)):
        typer.echo(
            f"the {service} database lacks migrations: `nrm db upgrade {service}` or --migrate"
        )
        raise typer.Exit(2)
    try:
        web = create_service(
            service,
            bootstrap=settings.kafka_bootstrap,
            credentials_file=settings.data_dir / "credentials.json",
        )
    except (ValueError, MissingMasterKeys) as exc:
        typer.echo(str(exc))
        raise typer.Exit(2) from None
    _serve_http(web, settings=settings)


def _serve_http(web: Any, *, settings: Settings, host: str | None = None) -> None:
    """Serve `web` with uvicorn until interrupted (on `host`, else the configured one)."""
    uvicorn.run(
        web,
        host=host or settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
        timeout_keep_alive=settings.http_keep_alive_seconds,
    )


def _private_data_dir(settings: Settings) -> None:
    """What this process writes is its owner's alone: files 0600, the data folder 0700."""
    os.umask(0o077)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.data_dir.chmod(0o700)


keys_app = typer.Typer(help="Encryption-at-rest master keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(key_id: str = typer.Option("k1", "--id", help="The new key's id.")) -> None:
    """Print a new master key as `{"id": "<base64>"}`, for NRM_<SERVICE>_MASTER_KEYS or a
    secrets file. Add it beside the old ones to rotate; the newest id seals new records."""
    typer.echo(json.dumps({key_id: Vault.generate_key()}))


DEMO_ENVIRONMENT = {
    # Deadlines short enough to watch an escalation happen, and a clock that looks often.
    "NRM_ROUTER_DEADLINES": '{"immediate": "20s", "high": "20s", "routine": "30s"}',
    "NRM_NOTIFY_DEADLINE_SWEEP_SECONDS": "2",
}


@app.command()
def up(
    demo: bool = typer.Option(False, help="Short acknowledgement deadlines, for `nrm demo`."),
) -> None:
    """Start the embedded stack: broker (unless NRM_KAFKA_BOOTSTRAP is set), topics, and every
    service in this process on NRM_PORT (8000). Ctrl-C stops it all cleanly; a crash loses
    nothing accepted (the next start replays what consumers had not read)."""
    if demo:
        for name, value in DEMO_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
    if "NRM_KAFKA_BOOTSTRAP" not in os.environ:
        # The embedded Tansu broker forms a consumer group only after half the session timeout,
        # and each service's consumers join in turn at start-up: keep it short (Apache Kafka
        # needs >= 6 s, which is the default when a broker is given).
        os.environ.setdefault("NRM_KAFKA_SESSION_TIMEOUT_MS", "2000")
        # Its topics live in memory and start empty: every service publishes again, before
        # serving, what its consumers had not confirmed reading (they drop duplicates).
        os.environ.setdefault("NRM_REPLAY_ON_START", "true")
    # Development: master keys are generated beside the data unless configured (production
    # gives every service its keys from a secret; `nrm serve` insists on it).
    os.environ.setdefault("NRM_GENERATE_MASTER_KEYS", "true")
    settings = Settings()
    configure_logging(settings.log_level)
    # Tokens name the issuer they came from: the stack's own address unless told otherwise.
    os.environ.setdefault("NRM_AUTH_ISSUER", f"http://127.0.0.1:{settings.port}")
    _private_data_dir(settings)
    db_upgrade(None)  # every service's migrations; tables are never created any other way
    embedded: EmbeddedBroker | None = None
    bootstrap = settings.kafka_bootstrap
    if bootstrap is None:
        embedded = EmbeddedBroker(log_file=settings.data_dir / "broker.log")
        embedded.start_process()
        bootstrap = embedded.bootstrap
    try:
        if embedded is not None:
            asyncio.run(_ready(embedded, settings.kafka_partitions))
        else:
            asyncio.run(ensure_topics(bootstrap, partitions=settings.kafka_partitions))
        credentials = settings.data_dir / "credentials.json"
        people_file = settings.data_dir / "people.json"
        stack = Stack(bootstrap=bootstrap, credentials_file=credentials, people_file=people_file)
        base = f"http://127.0.0.1:{settings.port}"
        typer.echo(
            f"NRM Exchange on {base} (health: {base}/healthz; broker {bootstrap}); "
            f"client credentials in {credentials}, demo people in {people_file}"
        )
        _serve_http(stack, settings=settings, host="127.0.0.1")
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    app()
