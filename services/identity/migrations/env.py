"""Alembic environment of the identity service (see services/common/migrations.py)."""

from services.common.migrations import run_env
from services.common.models import runtime_metadata
from services.identity.models import identity_metadata

run_env([identity_metadata, runtime_metadata])
