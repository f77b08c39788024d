"""notify: erasure (erased_referral; deliveries' erased_at, erasure_acknowledged_at; facts nullable)

Revision ID: notify_0005_erasure
Revises: notify_0004_recusal
Create Date: 2026-11-29 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "notify_0005_erasure"
down_revision: str | Sequence[str] | None = "notify_0004_recusal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FACTS = (
    ("urgency", sqlmodel.sql.sqltypes.AutoString(length=20)),
    ("region", sqlmodel.sql.sqltypes.AutoString(length=10)),
    ("kind", sqlmodel.sql.sqltypes.AutoString(length=20)),
    ("minor", sa.Boolean()),
)


def upgrade() -> None:
    op.create_table(
        "erased_referral",
        sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    with op.batch_alter_table("delivery") as batch:
        for name, type_ in FACTS:
            batch.alter_column(name, existing_type=type_, nullable=True)
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("erasure_acknowledged_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("erasure_acknowledged_at")
        batch.drop_column("erased_at")
        for name, type_ in FACTS:
            batch.alter_column(name, existing_type=type_, nullable=False)
    op.drop_table("erased_referral")
