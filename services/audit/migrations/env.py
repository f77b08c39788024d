"""Alembic environment of the audit service (see services/common/migrations.py)."""

from services.audit.models import audit_metadata
from services.common.migrations import run_env
from services.common.models import runtime_metadata

run_env([audit_metadata, runtime_metadata])
