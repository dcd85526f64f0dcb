"""Ruleset activations: which ruleset answers, since when, activated by whom.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 03:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.db.tables import UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ruleset_activations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(), nullable=False),
        sa.Column("sha256", sa.CHAR(64), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("previous_sha256", sa.CHAR(64), nullable=True),
        sa.Column("activated_at", UTCDateTime(), nullable=False),
        sa.Column("activated_by", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["rulesets.sha256"], name=op.f("fk_ruleset_activations_sha256_rulesets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ruleset_activations")),
    )


def downgrade() -> None:
    op.drop_table("ruleset_activations")
