"""Streaming the audit history for replay and impact analysis (server-side cursor, bounded memory), whole or in
contiguous ranges of its order (``created_at``, ``id``), so that several processes can each replay one range."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.chain_rows import document_keys
from service.db.document_store import load_texts
from service.db.documents import TextCache
from service.db.tables import decisions

__all__ = ["HistoryKey", "HistoryRow", "count_history", "history_keys", "stream_history"]

# A decision's place in the history's order: (created_at, id).
HistoryKey = tuple[datetime, uuid.UUID]


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
    after: HistoryKey | None = None,
    through: HistoryKey | None = None,
) -> AsyncIterator[HistoryRow]:
    """Audited decisions oldest first, fetched ``batch_size`` rows at a time; never the whole table.

    ``after`` and ``through`` bound the range read: decisions past the key ``after`` (excluded), up to the key
    ``through`` (included); ``limit`` counts from the range's start."""
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
    query = query.where(*_history_filter(since, after, through))
    if limit is not None:
        query = query.limit(limit)
    cache = TextCache()
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=batch_size))
        async for partition in result.partitions(batch_size):
            keyed = [(document_keys(row[2], row[3], row[4]), row) for row in partition]
            texts = await load_texts(conn, (key for pair, _ in keyed for key in pair), cache)
            for (profile, recommendation), row in keyed:
                identity, ruleset_sha256, *_, family, instance_type, scaling_method, instances, engine_version = row
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


def _history_filter(
    since: datetime | None, after: HistoryKey | None = None, through: HistoryKey | None = None
) -> list[ColumnElement[bool]]:
    key = tuple_(decisions.c.created_at, decisions.c.id)
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(decisions.c.created_at >= since)
    if after is not None:
        conditions.append(key > tuple_(*after, types=(decisions.c.created_at.type, decisions.c.id.type)))
    if through is not None:
        conditions.append(key <= tuple_(*through, types=(decisions.c.created_at.type, decisions.c.id.type)))
    return conditions


async def count_history(engine: AsyncEngine, *, since: datetime | None = None) -> int:
    """How many audited decisions ``stream_history(since=since)`` reads."""
    query = select(func.count()).select_from(decisions).where(*_history_filter(since))
    async with engine.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def history_keys(
    engine: AsyncEngine, offsets: list[int], *, since: datetime | None = None
) -> AsyncGenerator[HistoryKey, None]:
    """The keys of the decisions at ``offsets`` (ascending, 0 = the oldest) of ``stream_history(since=since)``'s
    order, each as soon as it is found; fewer when the history is shorter. Each step walks the index on from the key
    before, so the whole costs one pass over the keys up to the last offset, not one per offset."""
    last: HistoryKey | None = None
    position = -1
    async with engine.connect() as conn:
        for offset in offsets:
            query = (
                select(decisions.c.created_at, decisions.c.id)
                .where(*_history_filter(since, last))
                .order_by(decisions.c.created_at, decisions.c.id)
                .offset(offset - position - 1)
                .limit(1)
            )
            row = (await conn.execute(query)).first()
            if row is None:
                return
            last, position = (row.created_at, row.id), offset
            yield last
