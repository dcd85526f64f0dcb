"""Tamper-evident decisions (hash chain: seq, prev_hash, row_hash, audit_chain_head) and idempotency keys.

Decisions already stored are chained in (created_at, id) order. The append-only triggers are lifted for that
backfill only, inside the migration's transaction.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 00:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.chain import GENESIS_HASH, chain_hash
from service.db.repository import DecisionRow
from service.db.tables import UTCDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_MESSAGE = "decisions are append-only"
NEWEST_FIRST_INDEXES = {
    "ix_decisions_created_at_id": [],
    "ix_decisions_family_created_at": ["family"],
    "ix_decisions_scaling_method_created_at": ["scaling_method"],
    "ix_decisions_ruleset_version_created_at": ["ruleset_version"],
}
CHAIN_COLUMN_COMMENTS = {
    "seq": "position in the audit hash chain: 1, 2, 3, ... no gaps",
    "prev_hash": "row_hash of the decision at seq - 1 (zeros for seq 1)",
    "row_hash": "sha256 of this row's canonical encoding and prev_hash",
}

# The decisions table as this revision finds it (not service/db/tables.py, which may move on).
decisions = sa.table(
    "decisions",
    sa.column("id", sa.Uuid(as_uuid=True)),
    sa.column("created_at", UTCDateTime()),
    sa.column("ruleset_sha256", sa.CHAR(64)),
    sa.column("ruleset_version", sa.String()),
    sa.column("caller", sa.String()),
    sa.column("request_id", sa.String()),
    sa.column("family", sa.String()),
    sa.column("instance_type", sa.String()),
    sa.column("scaling_method", sa.String()),
    sa.column("instances", sa.Integer()),
    sa.column("profile", sa.Text()),
    sa.column("recommendation", sa.Text()),
    sa.column("seq", sa.BigInteger()),
    sa.column("prev_hash", sa.CHAR(64)),
    sa.column("row_hash", sa.CHAR(64)),
)
chain_head = sa.table("audit_chain_head", sa.column("id"), sa.column("seq"), sa.column("row_hash"))
DECISION_FIELDS = (
    "id",
    "created_at",
    "ruleset_sha256",
    "ruleset_version",
    "caller",
    "request_id",
    "family",
    "instance_type",
    "scaling_method",
    "instances",
    "profile",
    "recommendation",
)


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _create_sqlite_triggers() -> None:
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER decisions_no_{event.lower()} BEFORE {event} ON decisions "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
        )


def _drop_sqlite_triggers() -> None:
    op.execute("DROP TRIGGER IF EXISTS decisions_no_update")
    op.execute("DROP TRIGGER IF EXISTS decisions_no_delete")


def _drop_newest_first_indexes() -> None:
    for name in NEWEST_FIRST_INDEXES:
        op.drop_index(name, table_name="decisions")


def _create_newest_first_indexes() -> None:
    newest_first = [sa.text("created_at DESC"), sa.text("id DESC")]
    for name, columns in NEWEST_FIRST_INDEXES.items():
        op.create_index(name, "decisions", [*columns, *newest_first])


def _backfill_chain() -> tuple[int, str]:
    """Chain the decisions already stored, oldest first; the new head (seq, row_hash)."""
    conn = op.get_bind()
    query = sa.select(*(decisions.c[name] for name in DECISION_FIELDS)).order_by(decisions.c.created_at, decisions.c.id)
    seq, prev_hash = 0, GENESIS_HASH
    for found in conn.execute(query).all():
        row = DecisionRow(**found._asdict())
        seq += 1
        row_hash = chain_hash(seq, prev_hash, row)
        conn.execute(
            sa.update(decisions).where(decisions.c.id == row.id).values(seq=seq, prev_hash=prev_hash, row_hash=row_hash)
        )
        prev_hash = row_hash
    return seq, prev_hash


def upgrade() -> None:
    postgres = _postgres()
    op.create_table(
        "audit_chain_head",
        sa.Column(
            "id", sa.SmallInteger(), autoincrement=False, nullable=False, comment="always 1: the table has one row"
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False, comment="seq of the last decision (0: none yet)"),
        sa.Column("row_hash", sa.CHAR(64), nullable=False, comment="row_hash of the last decision (zeros: none yet)"),
        sa.CheckConstraint("id = 1", name="ck_audit_chain_head_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_chain_head"),
    )

    # Lift the append-only guard for the backfill (inside this transaction: nobody else ever sees it lifted).
    if postgres:
        op.execute("ALTER TABLE decisions DISABLE TRIGGER decisions_no_update_delete")
    else:
        _drop_sqlite_triggers()
    for name in ("seq", "prev_hash", "row_hash"):
        column_type = sa.BigInteger() if name == "seq" else sa.CHAR(64)
        op.add_column("decisions", sa.Column(name, column_type, nullable=True, comment=CHAIN_COLUMN_COMMENTS[name]))
    head_seq, head_hash = _backfill_chain()
    if postgres:
        for name in ("seq", "prev_hash", "row_hash"):
            op.alter_column("decisions", name, nullable=False)
    else:
        # SQLite cannot add NOT NULL to a column: batch mode rebuilds the table (which drops its indexes and
        # triggers; both are recreated below).
        _drop_newest_first_indexes()
        with op.batch_alter_table("decisions", recreate="always") as batch:
            for name in ("seq", "prev_hash", "row_hash"):
                batch.alter_column(
                    name, existing_type=sa.BigInteger() if name == "seq" else sa.CHAR(64), nullable=False
                )
        _create_newest_first_indexes()
    op.create_index("ix_decisions_seq", "decisions", ["seq"], unique=True)
    op.execute(sa.insert(chain_head).values(id=1, seq=head_seq, row_hash=head_hash))
    if postgres:
        op.execute("ALTER TABLE decisions ENABLE TRIGGER decisions_no_update_delete")
    else:
        _create_sqlite_triggers()

    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(), nullable=False, comment="who sent the key: keys are scoped by caller"),
        sa.Column("key", sa.String(255), nullable=False, comment="the Idempotency-Key header"),
        sa.Column(
            "request_sha256",
            sa.CHAR(64),
            nullable=False,
            comment="SHA-256 (hex) of the request it was first sent with",
        ),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, comment="after this the key may be reused"),
        sa.PrimaryKeyConstraint("caller", "key", name="pk_idempotency_keys"),
        sa.ForeignKeyConstraint(["decision_id"], ["decisions.id"], name="fk_idempotency_keys_decision_id_decisions"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    postgres = _postgres()
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_decisions_seq", table_name="decisions")
    if postgres:
        for name in ("row_hash", "prev_hash", "seq"):
            op.drop_column("decisions", name)
    else:
        _drop_sqlite_triggers()
        _drop_newest_first_indexes()
        with op.batch_alter_table("decisions", recreate="always") as batch:
            for name in ("row_hash", "prev_hash", "seq"):
                batch.drop_column(name)
        _create_newest_first_indexes()
        _create_sqlite_triggers()
    op.drop_table("audit_chain_head")
