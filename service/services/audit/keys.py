"""Idempotency keys: settled in a batch's transaction (``_store``); outside the batches, a retry answered without
queueing and expired keys purged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.chain import ChainHead
from service.db.connection import write_transaction
from service.db.repository import AuditRepository, DecisionRow, IdempotencyRecord
from service.observability import metrics
from service.services.audit.batch import IdempotencyKey, Pending, WriterStats
from service.services.audit.compression import DocumentCompression
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
    idempotency_ttl: timedelta
    documents: DocumentCompression

    async def recall(self, key: IdempotencyKey) -> DecisionRow | None:
        """The decision already answering ``key`` (not expired), if any; ``IdempotencyConflict`` if it was for
        another request. A read outside any batch: a retry of a committed request is answered without evaluating
        or queueing. (``write`` checks again in the batch's transaction, where the key's primary key settles a race.)"""
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

    async def _store(
        self, repo: AuditRepository, batch: list[Pending], now: datetime, chain: int
    ) -> tuple[list[DecisionRow | IdempotencyConflict], ChainHead]:
        """In the batch's transaction: lock ``chain``'s head, settle idempotency keys, append the new rows; the
        answers, and the head as this transaction leaves it."""
        started = time.perf_counter()
        head = await repo.lock_chain_head(chain)
        metrics.waited_for_chain(time.perf_counter() - started)
        keyed = [p.key for p in batch if p.key is not None]
        existing = await repo.find_idempotency_keys(k.scoped for k in keyed) if keyed else {}
        claimed: dict[tuple[str, str], Pending] = {}
        expired: list[tuple[str, str]] = []
        answers: list[DecisionRow | IdempotencyConflict] = []
        to_store: list[DecisionRow] = []
        for pending in batch:
            key = pending.key
            if key is None:
                answers.append(pending.row)
                to_store.append(pending.row)
                continue
            first = claimed.get(key.scoped)
            if first is not None:  # a duplicate of a request earlier in this batch
                assert first.key is not None
                same = first.key.request_sha256 == key.request_sha256
                answers.append(first.row if same else IdempotencyConflict(key.key))
                continue
            stored = existing.get(key.scoped)
            if stored is not None and stored[0].expires_at > now:
                record, decision = stored
                same = record.request_sha256 == key.request_sha256
                answers.append(decision if same else IdempotencyConflict(key.key))
                continue
            if stored is not None:
                expired.append(key.scoped)  # not purged yet: the key may be used again
            claimed[key.scoped] = pending
            answers.append(pending.row)
            to_store.append(pending.row)
        if expired:
            await repo.delete_idempotency_keys(expired, expired_at=now)
        chained = await repo.append_decisions(
            to_store, head, encoder=self.documents.encoder, written=self.documents.written
        )
        await repo.add_idempotency_keys(
            [
                IdempotencyRecord(
                    caller=p.key.caller,
                    key=p.key.key,
                    request_sha256=p.key.request_sha256,
                    decision_id=p.row.id,
                    decision_created_at=p.row.created_at,
                    created_at=now,
                    expires_at=now + self.idempotency_ttl,
                )
                for p in claimed.values()
                if p.key is not None
            ]
        )
        return answers, chained[-1].head if chained else head
