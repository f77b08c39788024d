"""Audit's tables: the append-only record chain, its head, checkpoints and the signing key.

Record fields are plain scalars (time as a fixed-width UTC string, payload as canonical JSON
text) so that the hash covers exactly what is stored, and verification reads rows without
re-encoding anything. On PostgreSQL, triggers reject UPDATE and DELETE on records and
checkpoints; the service never issues them.
"""

from datetime import datetime

from sqlalchemy import DDL, BigInteger, Column, Index, Integer, LargeBinary, Text, event
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.common.models import UTCDateTime, utcnow

audit_registry = registry()
audit_metadata = audit_registry.metadata


class AuditTable(SQLModel, registry=audit_registry):
    pass


class AuditRecord(AuditTable, table=True):
    __tablename__ = "audit_record"
    __table_args__ = (Index("ix_audit_record_source_sequence", "source", "source_sequence"),)

    sequence: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_id: str = Field(max_length=64, unique=True)
    type: str = Field(max_length=40, index=True)
    time: str = Field(max_length=27, index=True)  # 2026-11-28T15:49:05.123456Z
    source: str = Field(max_length=40)
    agency: str | None = Field(default=None, max_length=63, index=True)
    client_id: str | None = Field(default=None, max_length=100, index=True)
    subject: str | None = Field(default=None, max_length=64, index=True)
    outcome: str | None = Field(default=None, max_length=10)
    topic: str = Field(max_length=100)
    partition: int
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # Completeness, not integrity (outside the hash, whose fields are fixed): the source's
    # event number (`ce_sequence`) and when the event reached audit, to tell a gap in a
    # source's numbers from an event still on its way.
    source_sequence: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class AuditHead(AuditTable, table=True):
    """The chain's last sequence and hash: one row, locked by every append."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    sequence: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)


class AuditCheckpoint(AuditTable, table=True):
    __tablename__ = "audit_checkpoint"

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    head_hash: str = Field(max_length=64)
    time: str = Field(max_length=27)
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class AuditKey(AuditTable, table=True):
    """The Ed25519 checkpoint key; the private half sealed by the vault."""

    __tablename__ = "audit_key"

    name: str = Field(primary_key=True, max_length=100)
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sealed_private: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


def _ddl(statement: str) -> DDL:
    return DDL(statement)  # type: ignore[no-untyped-call]


APPEND_ONLY = _ddl(
    """
    CREATE OR REPLACE FUNCTION nrm_audit_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit tables are append-only (%% on %%)', TG_OP, TG_TABLE_NAME;
    END;
    $$ LANGUAGE plpgsql
    """
)

for table in (AuditRecord.__table__, AuditCheckpoint.__table__):  # type: ignore[attr-defined]
    event.listen(table, "after_create", APPEND_ONLY.execute_if(dialect="postgresql"))
    event.listen(
        table,
        "after_create",
        _ddl(
            f"CREATE TRIGGER {table.name}_append_only BEFORE UPDATE OR DELETE ON {table.name} "
            "FOR EACH ROW EXECUTE FUNCTION nrm_audit_append_only()"
        ).execute_if(dialect="postgresql"),
    )
    event.listen(
        table,
        "after_create",
        _ddl(
            f"CREATE TRIGGER {table.name}_no_truncate BEFORE TRUNCATE ON {table.name} "
            "FOR EACH STATEMENT EXECUTE FUNCTION nrm_audit_append_only()"
        ).execute_if(dialect="postgresql"),
    )
