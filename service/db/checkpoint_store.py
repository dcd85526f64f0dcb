"""The checkpoints' SQL: every chain's head recorded together, hash-chained
(``service.services.audit.checkpoints`` says how they are made and checked)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.rows import StoredCheckpoint
from service.db.tables import audit_checkpoints

__all__ = ["CheckpointQueries"]


class CheckpointQueries:
    """The checkpoint queries of ``AuditRepository`` (on its connection; never commits)."""

    __slots__ = ()
    _conn: AsyncConnection

    async def last_checkpoint(self) -> StoredCheckpoint | None:
        query = select(*audit_checkpoints.c).order_by(audit_checkpoints.c.seq.desc()).limit(1)
        row = (await self._conn.execute(query)).first()
        return None if row is None else StoredCheckpoint(**row._asdict())

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Insert a checkpoint; its ``seq`` already taken (another writer checkpointed first) is an
        ``IntegrityError``."""
        await self._conn.execute(insert(audit_checkpoints).values(**checkpoint.as_values()))

    async def stream_checkpoints(self, *, batch_size: int = 1000) -> AsyncIterator[StoredCheckpoint]:
        query = select(*audit_checkpoints.c).order_by(audit_checkpoints.c.seq).execution_options(yield_per=batch_size)
        result = await self._conn.stream(query)
        try:
            async for row in result:
                yield StoredCheckpoint(**row._asdict())
        finally:
            await result.close()

    async def checkpoints_after(self, after: int, *, limit: int) -> list[StoredCheckpoint]:
        """Up to ``limit`` checkpoints with ``seq > after``, oldest first (the API's pages, the witness's catch-up)."""
        query = (
            select(*audit_checkpoints.c)
            .where(audit_checkpoints.c.seq > after)
            .order_by(audit_checkpoints.c.seq)
            .limit(limit)
        )
        return [StoredCheckpoint(**row._asdict()) for row in await self._conn.execute(query)]

    async def count_checkpoints(self) -> int:
        return int((await self._conn.execute(select(func.count()).select_from(audit_checkpoints))).scalar_one())
