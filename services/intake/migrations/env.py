"""Alembic environment of the intake service (see services/common/migrations.py)."""

from services.common.migrations import run_env
from services.common.models import runtime_metadata
from services.intake.models import intake_metadata

run_env([intake_metadata, runtime_metadata])
