"""intake: identification decisions and clocks (identification), investigations (investigation)

Revision ID: intake_0005_identification
Revises: intake_0004_recusal
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "intake_0005_identification"
down_revision: str | Sequence[str] | None = "intake_0004_recusal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identification",
        sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("authority", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("reasonable_grounds_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reflection_period_seconds", sa.Float(), nullable=False),
        sa.Column("reflection_ends", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reflection_ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    op.create_index(
        "ix_identification_reasonable_grounds_due", "identification", ["reasonable_grounds_due"]
    )
    op.create_index("ix_identification_reflection_ends", "identification", ["reflection_ends"])
    op.create_table(
        "investigation",
        sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("agency", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("opened", sa.Boolean(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )


def downgrade() -> None:
    op.drop_table("investigation")
    op.drop_index("ix_identification_reflection_ends", table_name="identification")
    op.drop_index("ix_identification_reasonable_grounds_due", table_name="identification")
    op.drop_table("identification")
