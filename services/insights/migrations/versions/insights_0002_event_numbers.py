"""insights: numbered events (ce_sequence), delivery tracking for replay, purgeable processed ids

Revision ID: insights_0002_event_numbers
Revises: insights_0001
Create Date: 2026-11-29 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "insights_0002_event_numbers"
down_revision: str | Sequence[str] | None = "insights_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("sequence", sa.BigInteger(), nullable=True))
    op.add_column("outbox", sa.Column("kafka_partition", sa.Integer(), nullable=True))
    op.add_column("outbox", sa.Column("kafka_offset", sa.BigInteger(), nullable=True))
    op.add_column("outbox", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    # Rows published before events were numbered count as delivered: they are not replayed.
    op.execute("UPDATE outbox SET delivered_at = published_at WHERE published_at IS NOT NULL")
    op.create_index(
        "ix_outbox_unnumbered",
        "outbox",
        ["id"],
        unique=False,
        sqlite_where=sa.text("sequence IS NULL"),
        postgresql_where=sa.text("sequence IS NULL"),
    )
    op.create_index(
        "ix_outbox_undelivered",
        "outbox",
        ["id"],
        unique=False,
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.create_table(
        "event_counter",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_index(
        op.f("ix_processed_event_processed_at"),
        "processed_event",
        ["processed_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_event_processed_at"), table_name="processed_event")
    op.drop_table("event_counter")
    op.drop_index("ix_outbox_undelivered", table_name="outbox")
    op.drop_index("ix_outbox_unnumbered", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("delivered_at")
        batch.drop_column("kafka_offset")
        batch.drop_column("kafka_partition")
        batch.drop_column("sequence")
