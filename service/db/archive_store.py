"""The SQL of archiving: which months hold decisions, a month's decisions in chain order, recording an archive and
dropping the month (``service.services.audit.archive`` writes the files)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db import partitions
from service.db.chain_rows import STREAM_COLUMNS, chained_with_texts
from service.db.documents import TextCache
from service.db.rows import ChainedDecision
from service.db.tables import audit_archives, audit_documents, decisions, idempotency_keys

__all__ = [
    "ArchiveRecord",
    "archived_months",
    "count_month",
    "drop_month",
    "months_with_decisions",
    "record_archive",
    "stream_month",
]


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """A row of ``audit_archives``: a month exported and dropped."""

    month: int
    file: str
    sha256: str
    decisions: int
    manifest: str
    archived_at: datetime


def _month_expression(conn: AsyncConnection) -> object:
    if conn.dialect.name == "postgresql":
        return text(
            "(extract(year FROM created_at AT TIME ZONE 'UTC') * 100 "
            "+ extract(month FROM created_at AT TIME ZONE 'UTC'))::int"
        )
    return text("CAST(strftime('%Y%m', created_at) AS INTEGER)")  # stored as naive UTC text


async def months_with_decisions(conn: AsyncConnection, *, before: int) -> list[int]:
    """The months before ``before`` that hold at least one decision, oldest first."""
    start, _ = partitions.month_bounds(before)
    month = _month_expression(conn)
    query = text(f"SELECT DISTINCT {month} FROM decisions WHERE created_at < :start ORDER BY 1")
    return [int(row[0]) for row in await conn.execute(query, {"start": start})]


async def count_month(conn: AsyncConnection, month: int) -> int:
    start, end = partitions.month_bounds(month)
    query = (
        select(func.count()).select_from(decisions).where(decisions.c.created_at >= start, decisions.c.created_at < end)
    )
    return int(await conn.scalar(query) or 0)


async def stream_month(conn: AsyncConnection, month: int, *, batch_size: int = 1000) -> AsyncIterator[ChainedDecision]:
    """The decisions of ``month`` in ``(chain, seq)`` order, with their texts, in batches."""
    start, end = partitions.month_bounds(month)
    query = (
        select(*STREAM_COLUMNS)
        .where(decisions.c.created_at >= start, decisions.c.created_at < end)
        .order_by(decisions.c.chain, decisions.c.seq)
        .execution_options(yield_per=batch_size)
    )
    cache = TextCache()
    result = await conn.stream(query)
    try:
        async for batch in result.partitions(batch_size):
            for link in await chained_with_texts(conn, batch, cache):
                yield link
    finally:
        await result.close()


async def archived_months(conn: AsyncConnection) -> list[ArchiveRecord]:
    query = select(*audit_archives.c).order_by(audit_archives.c.month)
    return [ArchiveRecord(**row._asdict()) for row in await conn.execute(query)]


async def record_archive(conn: AsyncConnection, record: ArchiveRecord) -> None:
    await conn.execute(
        insert(audit_archives).values(
            month=record.month,
            file=record.file,
            sha256=record.sha256,
            decisions=record.decisions,
            manifest=record.manifest,
            archived_at=record.archived_at,
        )
    )


async def drop_month(conn: AsyncConnection, month: int) -> None:
    """Remove ``month``'s decisions and documents, and the idempotency keys that name them, in the caller's
    transaction (run as the tables' owner). Postgres: the month's partitions are detached and dropped (any rows the
    default partition caught for it are first moved into them). SQLite: the rows are deleted, the append-only
    triggers lifted for that statement only."""
    start, end = partitions.month_bounds(month)
    in_month = select(decisions.c.id).where(decisions.c.created_at >= start, decisions.c.created_at < end)
    await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.decision_id.in_(in_month)))
    if conn.dialect.name == "postgresql":
        if month not in await partitions.existing_months(conn):
            await partitions.create_month(conn, month)
        for table in partitions.PARTITIONED_TABLES:
            name = partitions.partition_name(table, month)
            await conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
            await conn.execute(text(f"DROP TABLE {name}"))
        return
    triggers = await conn.execute(
        text(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'trigger' AND tbl_name IN ('decisions', 'audit_documents')"
        )
    )
    saved = list(triggers)
    for name, _ in saved:
        await conn.execute(text(f"DROP TRIGGER {name}"))
    await conn.execute(delete(decisions).where(decisions.c.created_at >= start, decisions.c.created_at < end))
    await conn.execute(delete(audit_documents).where(audit_documents.c.month == month))
    for _, sql in saved:
        await conn.execute(text(sql))
