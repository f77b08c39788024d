"""Audit's tables: the append-only record chain, its head, checkpoints and the signing key.

Record fields are plain scalars (time as a fixed-width UTC string, payload as canonical JSON
text) so that the hash covers exactly what is stored, and verification reads rows without
re-encoding anything. Version 2 records (chain.py) hold a commitment in the hash and the
payload with its salt in `sealed`, under the key of the record's referral (`key_ref`). On
PostgreSQL, triggers reject DELETE on records and checkpoints and every UPDATE except erasure's:
one that only empties `sealed` and `payload`.
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


class Record(AuditTable, table=True):
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
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # Chain version 2 (the hash covers `commitment`, not `payload`, which stays None). Version 1
    # records keep their payload, None once their referral is erased.
    version: int = Field(default=2, sa_column=Column(Integer, nullable=False, server_default="1"))
    commitment: str | None = Field(default=None, max_length=64)
    # Outside the hash: the payload and salt sealed under `key_ref`'s data key (a referral id,
    # or SHARED_KEY), None once erased; and the submission's human reference, for search.
    sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    key_ref: str | None = Field(default=None, max_length=64, index=True)
    reference: str | None = Field(default=None, max_length=30, index=True)
    # Completeness, not integrity (outside the hash, whose fields are fixed): the source's
    # event number (`ce_sequence`) and when the event reached audit, to tell a gap in a
    # source's numbers from an event still on its way.
    source_sequence: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    # Correlation, outside the hash like the above: the W3C trace id the event carried.
    trace_id: str | None = Field(default=None, max_length=32)


class ChainHead(AuditTable, table=True):
    """The chain's last sequence and hash: one row, locked by every append."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    sequence: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)


class ChainCheckpoint(AuditTable, table=True):
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


class SealingKey(AuditTable, table=True):
    """The Ed25519 checkpoint key; the private half sealed by the vault."""

    __tablename__ = "audit_key"

    name: str = Field(primary_key=True, max_length=100)
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sealed_private: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class ReferralKey(AuditTable, table=True):
    """A referral's data key (or the shared key, `SHARED_KEY`), wrapped by the master key.
    Erasure deletes the row: what the key sealed can no longer be opened."""

    __tablename__ = "audit_referral_key"

    referral_id: str = Field(primary_key=True, max_length=64)
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    master_key_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime())


class ErasedReferral(AuditTable, table=True):
    """Referrals whose data audit destroyed (a copy of the erasure ledger's entries): later
    records of them get no payload, and a key for them is never made again."""

    __tablename__ = "audit_erasure"

    referral_id: str = Field(primary_key=True, max_length=64)
    basis: str = Field(max_length=40)
    erased_at: datetime = Field(sa_type=UTCDateTime())


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

# Records: the one UPDATE allowed is erasure's, emptying `sealed` (and a v1 `payload`) and
# changing nothing else.
ERASE_ONLY = _ddl(
    """
    CREATE OR REPLACE FUNCTION nrm_audit_erase_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.sealed IS NULL
           AND (NEW.payload IS NULL OR NEW.payload = OLD.payload)
           AND to_jsonb(NEW) - 'sealed' - 'payload' = to_jsonb(OLD) - 'sealed' - 'payload' THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit tables are append-only (%% on %%)', TG_OP, TG_TABLE_NAME;
    END;
    $$ LANGUAGE plpgsql
    """
)

for table, function in (
    (Record.__table__, "nrm_audit_erase_only"),  # type: ignore[attr-defined]
    (ChainCheckpoint.__table__, "nrm_audit_append_only"),  # type: ignore[attr-defined]
):
    event.listen(table, "after_create", APPEND_ONLY.execute_if(dialect="postgresql"))
    event.listen(table, "after_create", ERASE_ONLY.execute_if(dialect="postgresql"))
    event.listen(
        table,
        "after_create",
        _ddl(
            f"CREATE TRIGGER {table.name}_append_only BEFORE UPDATE OR DELETE ON {table.name} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
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
