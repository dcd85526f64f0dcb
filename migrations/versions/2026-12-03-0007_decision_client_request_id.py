"""Decisions keep the client's X-Request-ID apart: a nullable ``client_request_id``.

Until this revision ``request_id`` held the client's X-Request-ID when one was sent, so any caller could give its
decision another request's id (security review, finding 8). From this release ``request_id`` is always the id the
service made, and what the client sent is kept, if well-formed, in ``client_request_id``. Rows already stored keep
NULL: which of their request ids came from a client is not known, and nothing is backfilled, so no stored row is
updated and the append-only triggers stay in place.

**The hash chain covers it.** A client id is part of what the audit row says about the request, so an edit must
break the chain: ``service.db.chain`` hashes a row that carries one in a third frozen layout
(``advisor-audit-chain/3``: the client id follows ``request_id``), and every other row exactly as before (``/1`` or
``/2``), so the rows stored before this revision verify unchanged.

**The release before keeps running on this schema** (deploy/README.md): it inserts into named columns, so its rows
get NULL. On Postgres it sends its rows as ``decision_append_row_v2`` (0006), which therefore stays; this release
sends ``decision_append_row_v3``, the same attributes with ``client_request_id`` in the order
``service.db.repository`` sends them (a test holds the two together).

Downgrade drops the column, which would leave every row that carries a client id unverifiable (its hash covers a
value no longer stored): it is refused while such rows exist.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMENT = "the X-Request-ID the client sent (request_id is the service's own); NULL: none sent"
ROW_TYPE = "decision_append_row_v3"
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
    ("client_request_id", "text"),
    ("seq", "bigint"),
    ("prev_hash", "text"),
    ("row_hash", "text"),
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.add_column("decisions", sa.Column("client_request_id", sa.String(), nullable=True, comment=COMMENT))
    if _postgres():
        attributes = ", ".join(f"{name} {sql_type}" for name, sql_type in ATTRIBUTES)
        op.execute(f"CREATE TYPE {ROW_TYPE} AS ({attributes})")


def downgrade() -> None:
    kept = op.get_bind().execute(sa.text("SELECT count(*) FROM decisions WHERE client_request_id IS NOT NULL"))
    count = int(kept.scalar() or 0)
    if count:
        raise RuntimeError(
            f"refusing to drop decisions.client_request_id: {count} decision(s) carry one, and their row_hash "
            "covers it, so without the column the audit chain would no longer verify"
        )
    if _postgres():
        op.execute(f"DROP TYPE {ROW_TYPE}")
    op.drop_column("decisions", "client_request_id")
