"""insights: the NRM funnel's identification stages on stat_referral

Revision ID: insights_0003_funnel
Revises: insights_0002_event_numbers
Create Date: 2026-11-29 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "insights_0003_funnel"
down_revision: str | Sequence[str] | None = "insights_0002_event_numbers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stat_referral") as batch:
        batch.add_column(
            sa.Column("authority", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=True)
        )
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        for name in ("reasonable_grounds", "confirmed", "investigation_opened"):
            batch.add_column(
                sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
            )
    # Existing rows took the default; the column definitions match the models without one.
    with op.batch_alter_table("stat_referral") as batch:
        for name in ("reasonable_grounds", "confirmed", "investigation_opened"):
            batch.alter_column(name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("stat_referral") as batch:
        for name in ("investigation_opened", "confirmed", "reasonable_grounds"):
            batch.drop_column(name)
        batch.drop_column("decided_at")
        batch.drop_column("authority")
