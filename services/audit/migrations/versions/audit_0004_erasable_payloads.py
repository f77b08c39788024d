"""audit: chain v2 (salted commitments in the hash, payloads sealed per referral), erasure

Revision ID: audit_0004_erasable_payloads
Revises: audit_0003_event_numbers
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "audit_0004_erasable_payloads"
down_revision: str | Sequence[str] | None = "audit_0003_event_numbers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The one UPDATE records allow: erasure emptying `sealed` (and a v1 `payload`), nothing else.
ERASE_ONLY = """
CREATE OR REPLACE FUNCTION nrm_audit_erase_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.sealed IS NULL
       AND (NEW.payload IS NULL OR NEW.payload = OLD.payload)
       AND to_jsonb(NEW) - 'sealed' - 'payload' = to_jsonb(OLD) - 'sealed' - 'payload' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit tables are append-only (% on %)', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # the backfill below is an UPDATE, which the old trigger refuses
        op.execute("DROP TRIGGER audit_record_append_only ON audit_record")
    op.create_table(
        "audit_referral_key",
        sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    op.create_table(
        "audit_erasure",
        sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
    )
    with op.batch_alter_table("audit_record") as batch:
        batch.alter_column("payload", existing_type=sa.Text(), nullable=True)
        # Every record so far is version 1: the payload itself in the hash.
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(
            sa.Column("commitment", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("key_ref", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch.add_column(
            sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True)
        )
    op.create_index(op.f("ix_audit_record_key_ref"), "audit_record", ["key_ref"], unique=False)
    op.create_index(op.f("ix_audit_record_reference"), "audit_record", ["reference"], unique=False)
    # Search by reference reads this column now, not the payload (sealed in v2).
    extract = (
        "payload::json ->> 'reference'" if postgresql else "json_extract(payload, '$.reference')"
    )
    op.execute(
        f"UPDATE audit_record SET reference = {extract} "  # noqa: S608 (constant text)
        "WHERE type = 'referral.submitted' AND payload IS NOT NULL"
    )
    if postgresql:
        op.execute(ERASE_ONLY)
        op.execute(
            "CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record "
            "FOR EACH ROW EXECUTE FUNCTION nrm_audit_erase_only()"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("DROP TRIGGER audit_record_append_only ON audit_record")
    op.drop_index(op.f("ix_audit_record_reference"), table_name="audit_record")
    op.drop_index(op.f("ix_audit_record_key_ref"), table_name="audit_record")
    # Version 2 records cannot be turned back into version 1 ones: a downgrade with any is lost.
    with op.batch_alter_table("audit_record") as batch:
        batch.drop_column("reference")
        batch.drop_column("key_ref")
        batch.drop_column("sealed")
        batch.drop_column("commitment")
        batch.drop_column("version")
    op.drop_table("audit_erasure")
    op.drop_table("audit_referral_key")
    if postgresql:
        op.execute(
            "CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record "
            "FOR EACH ROW EXECUTE FUNCTION nrm_audit_append_only()"
        )
