"""Postgres: compress the stored JSON of new decisions with lz4 instead of pglz.

A recommendation is ~7.4 KB of JSON, above the TOAST threshold, so Postgres compresses every one. Under the
HTTP benchmark pglz took about 40 % of the database server's CPU time; lz4 (Postgres 14+, when built with it,
as Debian's and the official images are) roughly halved the server's CPU for the same load at a similar size.
Only rows written from now on are compressed with lz4; stored rows stay as they are (both read back the same).
Servers without lz4 keep pglz. SQLite: nothing to do.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 07:45:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("profile", "recommendation")


def _lz4_available() -> bool:
    found = op.get_bind().execute(
        sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    )
    return bool(found.scalar())


def _set_compression(method: str) -> None:
    clauses = ", ".join(f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in COLUMNS)
    op.execute(f"ALTER TABLE decisions {clauses}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql" and _lz4_available():
        _set_compression("lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _set_compression("DEFAULT")
