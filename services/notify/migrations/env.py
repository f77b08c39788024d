"""Alembic environment of the notify service (see services/common/migrations.py)."""

from services.common.migrations import run_env
from services.common.models import runtime_metadata
from services.notify.models import notify_metadata

run_env([notify_metadata, runtime_metadata])
