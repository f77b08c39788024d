"""Alembic environment of the router service (see services/common/migrations.py)."""

from services.common.migrations import run_env
from services.common.models import runtime_metadata
from services.router.models import router_metadata

run_env([router_metadata, runtime_metadata])
