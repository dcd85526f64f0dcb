"""One hash chain per writer: ``decisions.chain``, a head row per chain, and checkpoints that bind the chains.

Until this revision every audit batch of every worker and every pod locked the one ``audit_chain_head`` row, so
writers queued behind each other (ARCHITECTURE.md, "Several writers"). From this revision each writer appends to a
chain of its own, named by a small number it claims while it runs:

* ``decisions.chain`` (SMALLINT, default 1): the chain a row belongs to. Every row stored before is chain 1, whose
  hashes are unchanged, so the history verifies as it did. ``seq`` is unique per chain, not over the table.
* ``audit_chain_head`` keeps one row per chain (``id`` is the chain); the check ``id = 1`` becomes ``id >= 1``.
* ``audit_checkpoints``: every so often a writer records the heads of the chains that moved since the checkpoint
  before, hash-chained, so a chain whose tail was cut (and its head moved back) no longer matches what was recorded.

**The release before keeps running on this schema** (deploy/README.md): it locks head row 1 and inserts without a
chain, so its rows are chain 1 and chain 1 stays one unforked chain; it takes turns with this release's writer of
chain 1 as it did with its own workers.

Downgrade is refused while any decision is on a chain other than 1 (the single-chain schema cannot hold them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.tables import UTCDateTime

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHAIN_COMMENT = "the hash chain the row belongs to (audit_chain_head.id); 1 for every row stored before 0008"
COMMENTS_AFTER = {
    "decisions": {
        "seq": ("BigInteger", "position in its audit hash chain: 1, 2, 3, ... no gaps"),
        "prev_hash": (
            "CHAR",
            "row_hash of the decision at seq - 1 of the same chain (the chain's genesis hash for seq 1)",
        ),
    },
    "audit_chain_head": {
        "id": ("SmallInteger", "the chain: decisions.chain"),
        "seq": ("BigInteger", "seq of the chain's last decision (0: none yet)"),
        "row_hash": ("CHAR", "row_hash of the chain's last decision (its genesis: none yet)"),
    },
}
COMMENTS_BEFORE = {
    "decisions": {
        "seq": ("BigInteger", "position in the audit hash chain: 1, 2, 3, ... no gaps"),
        "prev_hash": ("CHAR", "row_hash of the decision at seq - 1 (zeros for seq 1)"),
    },
    "audit_chain_head": {
        "id": ("SmallInteger", "always 1: the table has one row"),
        "seq": ("BigInteger", "seq of the last decision (0: none yet)"),
        "row_hash": ("CHAR", "row_hash of the last decision (zeros: none yet)"),
    },
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _type(name: str) -> sa.types.TypeEngine[object]:
    return sa.CHAR(64) if name == "CHAR" else getattr(sa, name)()  # type: ignore[no-any-return]


def _comment(comments: dict[str, dict[str, tuple[str, str]]]) -> None:
    if not _postgres():  # SQLite keeps no column comments
        return
    for table, columns in comments.items():
        for column, (sql_type, comment) in columns.items():
            op.alter_column(table, column, existing_type=_type(sql_type), existing_nullable=False, comment=comment)


def _replace_head_check(old: str, new: str, condition: str) -> None:
    """Swap the check constraint of ``audit_chain_head``. SQLite cannot alter a table's constraints, so there the
    table (a handful of rows, no triggers or references) is rebuilt with the new one and its rows copied."""
    if _postgres():
        op.drop_constraint(old, "audit_chain_head", type_="check")
        op.create_check_constraint(new, "audit_chain_head", condition)
        return
    op.create_table(
        "audit_chain_head_new",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("row_hash", sa.CHAR(64), nullable=False),
        sa.CheckConstraint(condition, name=new),
        sa.PrimaryKeyConstraint("id", name="pk_audit_chain_head"),
    )
    op.execute("INSERT INTO audit_chain_head_new (id, seq, row_hash) SELECT id, seq, row_hash FROM audit_chain_head")
    op.drop_table("audit_chain_head")
    op.rename_table("audit_chain_head_new", "audit_chain_head")


def upgrade() -> None:
    op.add_column(
        "decisions", sa.Column("chain", sa.SmallInteger(), nullable=False, server_default="1", comment=CHAIN_COMMENT)
    )
    op.drop_index("ix_decisions_seq", table_name="decisions")
    op.create_index("ix_decisions_chain_seq", "decisions", ["chain", "seq"], unique=True)
    _replace_head_check("ck_audit_chain_head_single_row", "ck_audit_chain_head_chain_id", "id >= 1")
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False, comment="1, 2, 3, ... no gaps"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column(
            "heads", sa.Text(), nullable=False, comment="JSON [[chain, seq, row_hash], ...] by chain: the heads bound"
        ),
        sa.Column(
            "prev_hash", sa.CHAR(64), nullable=False, comment="row_hash of checkpoint seq - 1 (zeros for seq 1)"
        ),
        sa.Column("row_hash", sa.CHAR(64), nullable=False, comment="sha256 of this checkpoint's canonical encoding"),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_checkpoints"),
    )
    _comment(COMMENTS_AFTER)


def downgrade() -> None:
    other = op.get_bind().execute(sa.text("SELECT count(*) FROM decisions WHERE chain <> 1"))
    count = int(other.scalar() or 0)
    if count:
        raise RuntimeError(
            f"refusing to downgrade below 0008: {count} decision(s) are on chains other than 1, which the "
            "single-chain schema cannot hold"
        )
    op.drop_table("audit_checkpoints")
    op.execute("DELETE FROM audit_chain_head WHERE id <> 1")
    _replace_head_check("ck_audit_chain_head_chain_id", "ck_audit_chain_head_single_row", "id = 1")
    op.drop_index("ix_decisions_chain_seq", table_name="decisions")
    op.create_index("ix_decisions_seq", "decisions", ["seq"], unique=True)
    op.drop_column("decisions", "chain")
    _comment(COMMENTS_BEFORE)
