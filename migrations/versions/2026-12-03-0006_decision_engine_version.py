"""Decisions record the engine that evaluated them: a nullable ``engine_version`` (the advisor release).

Rows already stored keep NULL: "recorded before engine versions were kept". Nothing is backfilled (which engine
answered them is not known), so no stored row is updated and the append-only triggers are never lifted; adding a
nullable column leaves them in place on both backends (SQLite adds it without rebuilding the table).

**The hash chain covers it.** An engine version is part of what made the answer: relabelling one would make an
answer of one release pass for another's in replay and impact analysis, so an edit must break the chain like any
other. ``service.db.chain`` hashes a row with an engine version in a second frozen layout (``advisor-audit-chain/2``:
the version follows ``ruleset_version``) and a row without one exactly as before (``advisor-audit-chain/1``). So
every row stored before this revision verifies unchanged, with no rehashing (which would also have invalidated
chain heads anchored elsewhere), and setting, clearing or changing a row's ``engine_version`` breaks its hash
(``advisor audit verify`` names the row). A release before this one verifying the chain cannot check the rows
that carry a version (it does not know the column): verify with the newest release.

**The release before keeps running on this schema** (deploy/README.md): it inserts into named columns, so its rows
get NULL and chain as ``/1``. On Postgres it sends its rows as ``decision_append_row`` (0005), which therefore
stays as it is; this release sends ``decision_append_row_v2``, the same attributes with ``engine_version`` in the
order ``service.db.repository`` sends them (a test holds the two together). ``decision_append_row`` can go a
release later.

Downgrade drops the column, which would leave every row that carries a version unverifiable (its hash covers a
value no longer stored): it is refused while such rows exist.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMENT = "advisor release that evaluated the decision; NULL: recorded before engine versions were kept"
ROW_TYPE = "decision_append_row_v2"
ATTRIBUTES = (
    ("id", "uuid"),
    ("created_at", "timestamptz"),
    ("ruleset_sha256", "text"),
    ("ruleset_version", "text"),
    ("caller", "text"),
    ("request_id", "text"),
    ("family", "text"),
    ("instance_type", "text"),
    ("scaling_method", "text"),
    ("instances", "integer"),
    ("profile", "text"),
    ("recommendation", "text"),
    ("engine_version", "text"),
    ("seq", "bigint"),
    ("prev_hash", "text"),
    ("row_hash", "text"),
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.add_column("decisions", sa.Column("engine_version", sa.String(), nullable=True, comment=COMMENT))
    if _postgres():
        attributes = ", ".join(f"{name} {sql_type}" for name, sql_type in ATTRIBUTES)
        op.execute(f"CREATE TYPE {ROW_TYPE} AS ({attributes})")


def downgrade() -> None:
    versioned = op.get_bind().execute(sa.text("SELECT count(*) FROM decisions WHERE engine_version IS NOT NULL"))
    count = int(versioned.scalar() or 0)
    if count:
        raise RuntimeError(
            f"refusing to drop decisions.engine_version: {count} decision(s) carry one, and their row_hash covers "
            "it, so without the column the audit chain would no longer verify"
        )
    if _postgres():
        op.execute(f"DROP TYPE {ROW_TYPE}")
    op.drop_column("decisions", "engine_version")
