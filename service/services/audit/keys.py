"""Idempotency keys outside the batches: a retry answered without queueing, expired keys purged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.connection import write_transaction
from service.db.repository import AuditRepository, DecisionRow
from service.services.audit.batch import IdempotencyKey, WriterStats
from service.services.audit.errors import IdempotencyConflict, translate_unavailable

__all__ = ["IdempotencyKeys"]

logger = logging.getLogger("service.audit")


class IdempotencyKeys:
    """The audit writer's key reads and purges; the writer provides these attributes."""

    engine: AsyncEngine
    retry_after_s: int
    clock: Callable[[], datetime]
    purge_batch: int
    purge_interval_s: float
    stats: WriterStats

    async def recall(self, key: IdempotencyKey) -> DecisionRow | None:
        """The decision already answering ``key`` (not expired), if any; ``IdempotencyConflict`` if it was for
        another request. A read outside any batch: a retry of a committed request is answered without evaluating
        or queueing. (``write`` checks again, authoritatively, under the chain-head lock.)"""
        with translate_unavailable(self.retry_after_s):
            async with self.engine.connect() as conn:
                found = await AuditRepository(conn).find_idempotency_keys([key.scoped])
        stored = found.get(key.scoped)
        if stored is None:
            return None
        record, decision = stored
        if record.expires_at <= self.clock():
            return None
        if record.request_sha256 != key.request_sha256:
            raise IdempotencyConflict(key.key)
        return decision

    async def purge_expired_keys(self) -> int:
        """Delete expired idempotency keys, ``purge_batch`` per transaction, until none is left; how many."""
        total = 0
        while True:
            with translate_unavailable(self.retry_after_s):
                async with write_transaction(self.engine) as conn:
                    purged = await AuditRepository(conn).purge_idempotency_keys(
                        expired_at=self.clock(), limit=self.purge_batch
                    )
            total += purged
            self.stats.purged_keys += purged
            if purged < self.purge_batch:
                return total
            await asyncio.sleep(0)  # let batches in between

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(self.purge_interval_s)
            try:
                purged = await self.purge_expired_keys()
            except Exception as exc:  # an outage or a busy database: try again next time
                logger.warning("purging expired idempotency keys failed: %s", exc)
            else:
                if purged:
                    logger.info("purged %d expired idempotency key(s)", purged)
