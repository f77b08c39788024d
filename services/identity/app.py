"""The identity service: create_app and its lifespan."""

import contextlib
import json
import os
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.referrals import Agency
from services.common.app import create_app as create_service_app
from services.common.auth import verifier_from_settings
from services.common.crypto import vault_from_settings
from services.common.db import create_engine, transaction
from services.common.runtime import ServiceRuntime
from services.identity import consumer, people, service, signin
from services.identity.api import admin, router
from services.identity.models import identity_metadata
from services.identity.oidc import Provider
from services.identity.settings import IdentitySettings
from services.identity.throttle import TokenThrottles


def load_agencies(path: Path) -> list[Agency]:
    data = yaml.safe_load(path.read_text())
    return [Agency.model_validate(a) for a in data.get("agencies", [])]


def write_credentials(path: Path, created: Mapping[str, object]) -> None:
    """Add new client secrets (or demo people) to a mode-600 JSON file (never to logs)."""
    existing: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    existing.update(created)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(existing, f, indent=2, sort_keys=True)
    path.chmod(0o600)


def state_password_length(document: dict[str, Any], *, min_length: int) -> dict[str, Any]:
    """The document with this deployment's shortest password (NRM_IDENTITY_PASSWORD_MIN_LENGTH)
    stated where people's passwords are set."""
    for name in ("PersonIn", "PersonReset"):
        password = document["components"]["schemas"][name]["properties"]["password"]
        for option in password["anyOf"]:
            if option.get("type") == "string":
                option["minLength"] = min_length
    return document


def create_app(
    settings: IdentitySettings,
    *,
    bootstrap: str,
    engine: AsyncEngine | None = None,
    create_tables: bool = True,
    seed_from: Path | None = None,
    credentials_file: Path | None = None,
    people_file: Path | None = None,
) -> FastAPI:
    runtime = ServiceRuntime(
        service="identity",
        engine=engine
        or create_engine(
            settings.database_url_for(),
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        ),
        bootstrap=bootstrap,
        metadata=[identity_metadata],
        settings=settings,
        create_tables=create_tables,
    )

    async def local_jwks() -> dict[str, Any]:
        # Identity verifies its own admin tokens from its own key table, no HTTP round trip.
        async with runtime.sessions() as session:
            keys = await service.published_keys(
                session, token_ttl=timedelta(seconds=settings.token_ttl_seconds)
            )
        return {"keys": keys}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await runtime.watch_access(settings, consumer.access)
        async with transaction(runtime.sessions) as session:
            agencies = load_agencies(seed_from) if seed_from else []
            created = await service.seed(
                session, agencies=agencies, vault=app.state.vault, issuer=settings.auth_issuer
            )
        if created and credentials_file is not None:
            write_credentials(credentials_file, created)
        if people_file is not None:
            # Demo people, like the clients' credentials: only where `nrm up` asks for them.
            async with transaction(runtime.sessions) as session:
                demo = await people.seed_people(
                    session, agencies=[a.id for a in agencies], vault=app.state.vault
                )
            if demo:
                write_credentials(people_file, demo)
        try:
            yield
        finally:
            await runtime.stop()

    app = create_service_app(
        title="NRM Exchange identity",
        service="identity",
        settings=settings,
        routers=[router, signin.router, admin],
        checks=runtime.checks,
        lifespan=lifespan,
    )
    document = app.openapi
    app.openapi = lambda: state_password_length(  # type: ignore[method-assign]
        document(), min_length=settings.password_min_length
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.vault = vault_from_settings(settings)
    app.state.access_audit = runtime.access_audit
    app.state.revocations = runtime.revocations
    app.state.verifier = verifier_from_settings(settings, jwks=local_jwks)
    app.state.throttles = TokenThrottles(
        per_client=settings.token_failures_per_client,
        per_address=settings.token_failures_per_address,
        window=settings.token_failure_window_seconds,
    )
    app.state.provider = Provider(runtime=runtime, settings=settings, vault=app.state.vault)
    app.state.signin_throttles = TokenThrottles(
        per_client=settings.signin_failures_per_person,
        per_address=settings.signin_failures_per_address,
        window=settings.signin_failure_window_seconds,
    )
    app.state.jwks = local_jwks  # for services composed into the same process (services.stack)
    return app
