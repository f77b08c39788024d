"""Alembic scaffolding shared by every service.

A service keeps `services/<name>/migrations/` with an `env.py` that calls
`run_env([service_metadata, runtime_metadata])`, the `script.py.mako` from
`services/common/migration_template/`, and `versions/`. `upgrade()` and `upgrade_async()` run
them against a URL or an open engine; `diff()` says what a database lacks against the models.
"""

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from alembic import command, context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_engine
from services.common.models import UTCDateTime

TEMPLATE_DIR = Path(__file__).parent / "migration_template"


def alembic_config(script_location: Path, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(script_location: Path, url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` (blocking; call from a thread inside an event loop).

    A database whose tables were made without Alembic (a `var/` from before `nrm up` migrated)
    is first stamped at the initial revision, which is what those tables are."""
    config = alembic_config(script_location, url)
    if asyncio.run(_unversioned(url)):
        (base,) = ScriptDirectory.from_config(config).get_bases()
        command.stamp(config, base)
    command.upgrade(config, revision)


def pending(script_location: Path, url: str) -> bool:
    """Whether the database at `url` lacks migrations (blocking, like `upgrade`)."""
    config = alembic_config(script_location, url)
    heads = set(ScriptDirectory.from_config(config).get_heads())
    return asyncio.run(_current(url)) != heads


async def _current(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(
                await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_heads())
            )
    finally:
        await engine.dispose()


async def _unversioned(url: str) -> bool:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return bool(names) and "alembic_version" not in names


async def upgrade_async(engine: AsyncEngine, script_location: Path, revision: str = "head") -> None:
    """Upgrade through an existing engine (tests isolate PostgreSQL by search_path this way)."""

    def _run(connection: Connection) -> None:
        config = alembic_config(script_location)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def diff(engine: AsyncEngine, metadata: Sequence[MetaData]) -> list[Any]:
    """Differences between the database schema and the models (empty when they match)."""

    def _compare(connection: Connection) -> list[Any]:
        combined = MetaData()
        for md in metadata:
            for table in md.tables.values():
                table.to_metadata(combined)
        ctx = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(ctx, combined))

    async with engine.connect() as conn:
        return await conn.run_sync(_compare)


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write our column types as plain SQLAlchemy ones, so migration scripts need no imports
    from the services (UTCDateTime only changes how values are converted, not the column)."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_env(target_metadata: Sequence[MetaData]) -> None:
    """Body of a service's `migrations/env.py`."""
    config = context.config
    metadata = list(target_metadata)

    def _configure_and_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
            render_item=_render_item,
        )
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return

    async def _online() -> None:
        url = config.get_main_option("sqlalchemy.url")
        assert url, "sqlalchemy.url is not set"
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(_configure_and_run)
        await engine.dispose()

    asyncio.run(_online())
