"""notify: the W3C traceparent that queued each dispatch (its delivery event continues it)

Revision ID: notify_0006_dispatch_trace
Revises: notify_0005_erasure
Create Date: 2026-11-29 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "notify_0006_dispatch_trace"
down_revision: str | Sequence[str] | None = "notify_0005_erasure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "dispatch",
        sa.Column("traceparent", sqlmodel.sql.sqltypes.AutoString(length=55), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("dispatch") as batch:
        batch.drop_column("traceparent")
