"""`nrm clients create|rotate|disable` against a real identity database (SQLite file)."""

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.common.db import create_engine, session_factory
from services.identity import service
from services.identity.service import OAuthError


def test_clients_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NRM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(
        app, ["clients", "create", "auditor-2", "--agency", "auditor-2", "--role", "auditor"]
    )
    assert created.exit_code == 0, created.output
    first = json.loads(created.output)["client_secret"]
    again = runner.invoke(
        app, ["clients", "create", "auditor-2", "--agency", "auditor-2", "--role", "auditor"]
    )
    assert again.exit_code == 1 and "already exists" in again.output
    no_agency = runner.invoke(
        app, ["clients", "create", "desk", "--agency", "nowhere", "--role", "caseworker"]
    )
    assert no_agency.exit_code == 1 and "No agency" in no_agency.output
    rotated = runner.invoke(app, ["clients", "rotate", "auditor-2"])
    second = json.loads(rotated.output)["client_secret"]
    assert second != first
    assert runner.invoke(app, ["clients", "disable", "auditor-2"]).exit_code == 0
    assert runner.invoke(app, ["clients", "disable", "ghost"]).exit_code == 1

    async def check() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/identity.db")
        async with session_factory(engine)() as session:
            with pytest.raises(OAuthError, match="disabled"):
                await service.authenticate_client(session, client_id="auditor-2", secret=second)
            with pytest.raises(OAuthError, match="authentication failed"):
                await service.authenticate_client(session, client_id="auditor-2", secret=first)
        await engine.dispose()

    asyncio.run(check())
