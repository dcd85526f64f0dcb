"""Streaming the audit history for replay and impact analysis (server-side cursor, bounded memory)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.chain_store import document_keys
from service.db.document_store import load_texts
from service.db.documents import TextCache
from service.db.tables import decisions

__all__ = ["HistoryRow", "stream_history"]


@dataclass(frozen=True, slots=True)
class HistoryRow:
    id: uuid.UUID
    ruleset_sha256: str
    profile: str
    recommendation: str
    family: str | None
    instance_type: str | None
    scaling_method: str | None
    instances: int | None
    engine_version: str | None  # None: recorded before engine versions were kept


async def stream_history(
    engine: AsyncEngine,
    *,
    since: datetime | None = None,
    limit: int | None = None,
    batch_size: int = 2000,
) -> AsyncIterator[HistoryRow]:
    """Audited decisions oldest first, fetched ``batch_size`` rows at a time; never the whole table."""
    query = select(
        decisions.c.id,
        decisions.c.ruleset_sha256,
        decisions.c.created_at,
        decisions.c.profile_sha256,
        decisions.c.recommendation_sha256,
        decisions.c.family,
        decisions.c.instance_type,
        decisions.c.scaling_method,
        decisions.c.instances,
        decisions.c.engine_version,
    ).order_by(decisions.c.created_at, decisions.c.id)
    if since is not None:
        query = query.where(decisions.c.created_at >= since)
    if limit is not None:
        query = query.limit(limit)
    cache = TextCache()
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=batch_size))
        async for partition in result.partitions(batch_size):
            keyed = [(document_keys(row[2], row[3], row[4]), row) for row in partition]
            texts = await load_texts(conn, (key for pair, _ in keyed for key in pair), cache)
            for (profile, recommendation), row in keyed:
                identity, ruleset_sha256 = row[0], row[1]
                family, instance_type, scaling_method, instances, engine_version = row[5:]
                yield HistoryRow(
                    identity,
                    ruleset_sha256,
                    texts[profile],
                    texts[recommendation],
                    family,
                    instance_type,
                    scaling_method,
                    instances,
                    engine_version,
                )
