"""The intake service: create_app and its lifespan."""

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topics import CASE_EVENTS, ROUTING
from services.common.app import create_app as create_service_app
from services.common.auth import JwksSource, verifier_from_settings
from services.common.bus import ConsumerRunner
from services.common.db import create_engine
from services.common.runtime import ServiceRuntime
from services.intake.api import router
from services.intake.batch import SubmissionQueue
from services.intake.consumer import on_case_event, on_routing
from services.intake.crypto import Vault
from services.intake.models import intake_metadata
from services.intake.settings import IntakeSettings


def load_vault(settings: IntakeSettings) -> Vault:
    """Master keys from settings; else a key generated once and kept in the data directory."""
    if settings.master_keys:
        keys = {k: v.get_secret_value() for k, v in settings.master_keys.items()}
        active = settings.active_master_key or sorted(keys)[-1]
        return Vault.from_config(keys, active)
    path = settings.data_dir / "intake-master-keys.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"active": "k1", "keys": {"k1": Vault.generate_key()}}, f)
    data = json.loads(Path(path).read_text())
    return Vault.from_config(data["keys"], data["active"])


def create_app(
    settings: IntakeSettings,
    *,
    bootstrap: str,
    engine: AsyncEngine | None = None,
    jwks: JwksSource | None = None,
) -> FastAPI:
    runtime = ServiceRuntime(
        service="intake",
        engine=engine or create_engine(settings.database_url_for()),
        bootstrap=bootstrap,
        metadata=[intake_metadata],
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        assert runtime.producer is not None
        # Joined concurrently: forming a group takes the broker a moment per group.
        await asyncio.gather(
            *(
                runtime.add_consumer(
                    ConsumerRunner(
                        name=name,
                        topics=[topic],
                        handler=handler,
                        sessions=runtime.sessions,
                        bootstrap=bootstrap,
                        producer=runtime.producer,
                        max_attempts=settings.consumer_max_attempts,
                        session_timeout_ms=settings.kafka_session_timeout_ms,
                    )
                )
                for name, topic, handler in (
                    ("intake.routing", ROUTING.name, on_routing),
                    ("intake.case-events", CASE_EVENTS.name, on_case_event),
                )
            )
        )
        submissions = app.state.submissions = SubmissionQueue(
            sessions=runtime.sessions, vault=app.state.vault
        )
        await submissions.start()
        try:
            yield
        finally:
            await submissions.stop()
            await runtime.stop()

    app = create_service_app(
        title="NRM Exchange intake", routers=[router], checks=runtime.checks, lifespan=lifespan
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.vault = load_vault(settings)
    app.state.access_audit = runtime.access_audit
    app.state.verifier = verifier_from_settings(settings, jwks=jwks)
    return app
