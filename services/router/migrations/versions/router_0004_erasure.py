"""router: erased referrals (routed_referral.erased_at)

Revision ID: router_0004_erasure
Revises: router_0003_event_numbers
Create Date: 2026-11-29 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "router_0004_erasure"
down_revision: str | Sequence[str] | None = "router_0003_event_numbers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "routed_referral", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("routed_referral") as batch:
        batch.drop_column("erased_at")
