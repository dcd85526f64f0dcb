"""GET /v1/audit/checkpoints: the signed checkpoints, oldest first, with the public key that checks them.

Oldest first, paged by seq (``after``: the last seq already read), so a mirror polls with the seq it holds and gets
exactly what is new; the order is the order the checkpoints were chained in. Each item is a checkpoint as stored
and as the witness holds it (``service.services.audit.witness``): seq, time, the heads it binds, prev_hash,
row_hash, and for a signed one the key id and the base64 Ed25519 signature of
``["advisor-audit-checkpoint-signature/1", seq, row_hash]`` (``service.services.audit.signing``). ``public_keys``
lists the key the service signs with now (none if it signs nothing).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from service.api.decisions import AuditReadController
from service.api.openapi_docs import error_responses
from service.services.audit import AuditReader
from service.services.audit.signing import CheckpointSigner, public_key_pem

__all__ = [
    "CheckpointController",
    "CheckpointKeys",
    "CheckpointPage",
    "PublicKey",
    "SignedCheckpoint",
    "signing_keys",
]


class SignedCheckpoint(msgspec.Struct, kw_only=True, frozen=True):
    seq: int
    time: str  # canonical UTC text, as hashed: YYYY-MM-DDTHH:MM:SS.ffffffZ
    heads: list[tuple[int, int, str]]  # [chain, seq, row_hash] of every chain bound, by chain
    prev_hash: str
    row_hash: str
    key_id: str | None  # hex sha256 of the raw public key; null: recorded unsigned
    signature: str | None  # base64 Ed25519


class PublicKey(msgspec.Struct, kw_only=True, frozen=True):
    key_id: str
    public_key_pem: str


class CheckpointPage(msgspec.Struct, kw_only=True, frozen=True):
    items: list[SignedCheckpoint]
    public_keys: list[PublicKey]
    next_after: int | None = None  # pass as `after` for the next page; null: this was the last


CheckpointKeys = list[PublicKey]


class CheckpointController(AuditReadController):
    path = "/v1/audit"

    @get(
        "/checkpoints",
        operation_id="listAuditCheckpoints",
        summary="Signed audit checkpoints, oldest first",
        description="Every checkpoint binding the audit chains' heads, in seq order: pass `next_after` back as "
        "`after` until it is null. `signature` is Ed25519 (base64) over the UTF-8 of the compact JSON "
        '`["advisor-audit-checkpoint-signature/1", seq, row_hash]` by the key `key_id` (hex sha256 of the raw '
        "public key); `public_keys` holds the key the service signs with now. Checkpoints recorded before a key was "
        "configured are unsigned (null). `advisor audit verify --checkpoints` checks the stored history against "
        "the copies the service published to its witness.",
        responses=error_responses(400, 401, 403, 422, 429, 503),
    )
    async def list_checkpoints(
        self,
        reader: NamedDependency[AuditReader],
        checkpoint_keys: NamedDependency[CheckpointKeys],
        after: Annotated[int, QueryParameter(ge=0, le=10**15, description="Checkpoints with a greater seq.")] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500, description="Page size.")] = 100,
    ) -> CheckpointPage:
        rows = await reader.checkpoints(after=after, limit=limit + 1)
        page, more = rows[:limit], len(rows) > limit
        items = [
            SignedCheckpoint(
                seq=c.seq,
                time=c.time,
                heads=c.heads,
                prev_hash=c.prev_hash,
                row_hash=c.row_hash,
                key_id=c.key_id,
                signature=c.signature,
            )
            for c in page
        ]
        return CheckpointPage(
            items=items, public_keys=checkpoint_keys, next_after=page[-1].seq if more and page else None
        )


def signing_keys(signer: CheckpointSigner | None) -> CheckpointKeys:
    """The public key of ``signer`` as listed with the checkpoints (none without a signer)."""
    if signer is None:
        return []
    return [PublicKey(key_id=signer.key_id, public_key_pem=public_key_pem(signer.public_key))]
