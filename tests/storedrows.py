"""Test helpers that write or count stored rows directly, for tests that set the store up or check it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.repository import AuditRepository, DecisionRow
from service.db.tables import decisions, idempotency_keys


async def append_decisions(conn: AsyncConnection, rows: Sequence[DecisionRow]) -> None:
    """Append rows to the hash chain as the audit writer's locked path does: lock the head, then append after it."""
    if rows:
        repo = AuditRepository(conn)
        await repo.append_decisions(rows, await repo.lock_chain_head())


async def _count(conn: AsyncConnection, table: Table) -> int:
    return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def decision_count(conn: AsyncConnection) -> int:
    return await _count(conn, decisions)


async def idempotency_key_count(conn: AsyncConnection) -> int:
    return await _count(conn, idempotency_keys)
