"""notify: people who recused themselves from a referral (recusal)

Revision ID: notify_0004_recusal
Revises: notify_0003_event_numbers
Create Date: 2026-11-29 08:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "notify_0004_recusal"
down_revision: str | Sequence[str] | None = "notify_0003_event_numbers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recusal",
        sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "subject"),
    )


def downgrade() -> None:
    op.drop_table("recusal")
