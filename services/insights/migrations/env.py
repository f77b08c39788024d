"""Alembic environment of the insights service (see services/common/migrations.py)."""

from services.common.migrations import run_env
from services.common.models import runtime_metadata
from services.insights.models import insights_metadata

run_env([insights_metadata, runtime_metadata])
