"""Signed checkpoints: ``audit_checkpoints.key_id`` and ``audit_checkpoints.signature``, both nullable.

From this revision a writer given a signing key (``ADVISOR_AUDIT_CHECKPOINT_SIGNING_KEY_FILE``) signs each
checkpoint it records with Ed25519 and stores the signature (base64) and the id of the key that made it (the hex
SHA-256 of its raw 32-byte public key) beside it (``service.services.audit.signing``). Checkpoints recorded before,
or without a key, keep NULL in both: nothing is backfilled and no stored row is updated, so the table stays
append-only. The signature is not part of ``row_hash``, so every checkpoint hashed before verifies unchanged.

**The release before keeps running on this schema**: it inserts into named columns, so its checkpoints get NULL.

Downgrade drops both columns (the signatures are lost; copies published to the witness keep theirs).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_ID_COMMENT = "sha256 (hex) of the raw Ed25519 public key that signed the checkpoint; NULL: unsigned"
SIGNATURE_COMMENT = "base64 Ed25519 signature of the checkpoint's signed bytes (signing.py); NULL: unsigned"


def upgrade() -> None:
    op.add_column("audit_checkpoints", sa.Column("key_id", sa.CHAR(64), nullable=True, comment=KEY_ID_COMMENT))
    op.add_column("audit_checkpoints", sa.Column("signature", sa.Text(), nullable=True, comment=SIGNATURE_COMMENT))


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.drop_column("signature")
        batch.drop_column("key_id")
