"""intake: retention and erasure (legal holds, erasure requests; referral majority, withdrawal
and erasure columns)

Revision ID: intake_0006_retention
Revises: intake_0005_identification
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "intake_0006_retention"
down_revision: str | Sequence[str] | None = "intake_0005_identification"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("referral", sa.Column("majority_on", sa.Date(), nullable=True))
    op.add_column("referral", sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "referral",
        sa.Column("erasure_basis", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    )
    op.add_column("referral", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "legal_hold",
        sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("agency", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("placed_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id", "agency"),
    )
    op.create_table(
        "erasure_request",
        sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column(
            "requested_by_actor", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False
        ),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )


def downgrade() -> None:
    op.drop_table("erasure_request")
    op.drop_table("legal_hold")
    with op.batch_alter_table("referral") as batch:  # SQLite drops columns by copying
        batch.drop_column("erased_at")
        batch.drop_column("erasure_basis")
        batch.drop_column("withdrawn_at")
        batch.drop_column("majority_on")
