"""Settings: shared NRM_ values, per-service NRM_<SERVICE>_ values on top."""

from typing import ClassVar

import pytest

from services.common.settings import Settings


class IntakeSettings(Settings):
    service: ClassVar[str] = "intake"
    max_body_bytes: int = 65536


def test_service_prefix_overrides_shared_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NRM_KAFKA_PARTITIONS", "3")
    monkeypatch.setenv("NRM_LOG_LEVEL", "debug")
    monkeypatch.setenv("NRM_INTAKE_LOG_LEVEL", "warning")
    monkeypatch.setenv("NRM_INTAKE_MAX_BODY_BYTES", "1024")
    s = IntakeSettings()
    assert s.kafka_partitions == 3
    assert s.log_level == "warning"
    assert s.max_body_bytes == 1024
    assert Settings().log_level == "debug"


def test_one_database_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NRM_DATA_DIR", "/srv/nrm")
    assert IntakeSettings().database_url_for() == "sqlite+aiosqlite:////srv/nrm/intake.db"
    monkeypatch.setenv("NRM_DATABASE_URL", "postgresql+asyncpg://db/nrm_{service}")
    assert IntakeSettings().database_url_for() == "postgresql+asyncpg://db/nrm_intake"
    assert IntakeSettings().database_url_for("router") == "postgresql+asyncpg://db/nrm_router"
