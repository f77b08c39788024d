"""`nrm clients create|rotate|disable` against a real identity database (SQLite file)."""

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.common.db import create_engine, session_factory
from services.identity import people, service
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


def test_people_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nrm people create|list|disable|enable|reset-password|reset-2fa` on a real identity
    database: the generated password verifies, a reset replaces it, disabling is recorded."""
    monkeypatch.setenv("NRM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    made = runner.invoke(app, ["people", "create", "amina", "--agency", "dpo", "--role", "dpo"])
    assert made.exit_code == 0, made.output
    person = json.loads(made.output)
    assert person["username"] == "amina" and person["roles"] == ["dpo"]
    assert person["second_factor"] is False and len(person["password"]) == 20
    again = runner.invoke(app, ["people", "create", "amina", "--agency", "dpo", "--role", "dpo"])
    assert again.exit_code == 1 and "already exists" in again.output
    listed = runner.invoke(app, ["people", "list"])
    assert [json.loads(line)["username"] for line in listed.output.splitlines()] == ["amina"]
    reset = json.loads(runner.invoke(app, ["people", "reset-password", "amina"]).output)
    assert reset["password"] != person["password"]
    assert runner.invoke(app, ["people", "reset-2fa", "amina"]).exit_code == 0
    assert runner.invoke(app, ["people", "disable", "amina"]).output == "disabled amina\n"
    assert runner.invoke(app, ["people", "disable", "ghost"]).exit_code == 1

    async def check() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/identity.db")
        async with session_factory(engine)() as session:
            row = await people.by_username(session, "amina")
            assert row is not None and row.disabled
            assert await people.check_password(row, reset["password"])
            assert not await people.check_password(row, person["password"])
        await engine.dispose()

    asyncio.run(check())
    assert runner.invoke(app, ["people", "enable", "amina"]).output == "enabled amina\n"
