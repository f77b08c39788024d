"""audit: the W3C trace id each record's event carried (outside the hash chain)

Revision ID: audit_0005_trace_id
Revises: audit_0004_erasable_payloads
Create Date: 2026-11-29 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "audit_0005_trace_id"
down_revision: str | Sequence[str] | None = "audit_0004_erasable_payloads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "audit_record",
        sa.Column("trace_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_record") as batch:
        batch.drop_column("trace_id")
