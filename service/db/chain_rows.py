"""A stored decision read back for a chain walk: the columns selected, and its texts joined in from its documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.document_store import UnreadableDocument, load_decision_texts
from service.db.documents import TextCache, month_of
from service.db.rows import ChainedDecision, DecisionRow
from service.db.tables import decisions

__all__ = ["STORED_FIELDS", "STREAM_COLUMNS", "chained_with_texts", "document_keys"]

DocumentKey = tuple[int, bytes]
STORED_FIELDS = tuple(
    name for name in (f.name for f in fields(DecisionRow)) if name not in ("profile", "recommendation")
)
_CHAIN_COLUMNS = (decisions.c.chain, decisions.c.seq, decisions.c.prev_hash, decisions.c.row_hash)
_DOCUMENT_COLUMNS = (decisions.c.profile_sha256, decisions.c.recommendation_sha256)
_STORED_COLUMNS = tuple(decisions.c[name] for name in STORED_FIELDS)
# A decision with its place in its chain and its documents' names: what a chain walk selects.
STREAM_COLUMNS = (*_CHAIN_COLUMNS, *_DOCUMENT_COLUMNS, *_STORED_COLUMNS)


async def chained_with_texts(
    conn: AsyncConnection, batch: Sequence[Row[Any]], cache: TextCache
) -> list[ChainedDecision]:
    """Rows selected as ``STREAM_COLUMNS`` as chained decisions, their profiles and answers read and decoded. A
    missing or changed document raises ``UnreadableDocument`` naming its decision, with the decisions before it in
    ``links``."""
    keyed = [(document_keys(row.created_at, row.profile_sha256, row.recommendation_sha256), row) for row in batch]
    try:
        texts = await load_decision_texts(conn, [pair for pair, _ in keyed], cache)
        unreadable = None
    except UnreadableDocument as exc:
        texts, unreadable = exc.texts, exc
    links: list[ChainedDecision] = []
    for index, ((profile, recommendation), row) in enumerate(keyed):
        chain, seq, prev_hash, row_hash, _, _, *values = tuple(row)
        stored = dict(zip(STORED_FIELDS, values, strict=True))
        if unreadable is not None and index == unreadable.index:
            unreadable.decision = (int(chain), int(seq), stored["id"])
            unreadable.links = links
            raise unreadable
        decision = DecisionRow(**stored, profile=texts[profile], recommendation=texts[recommendation])
        links.append(
            ChainedDecision(seq=int(seq), prev_hash=prev_hash, row_hash=row_hash, decision=decision, chain=int(chain))
        )
    return links


def document_keys(
    created_at: datetime, profile_sha256: str, recommendation_sha256: str
) -> tuple[DocumentKey, DocumentKey]:
    """The ``(month, sha256)`` of a decision's profile and recommendation documents."""
    month = month_of(created_at)
    return (month, bytes.fromhex(profile_sha256)), (month, bytes.fromhex(recommendation_sha256))
