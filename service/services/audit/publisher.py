"""Publishing signed checkpoints to the witness, in order, without ever holding up a decision.

After a writer records a checkpoint (``checkpoints.py``) it publishes every signed checkpoint the witness does not
have yet: it asks the witness where its copies end (``last_seq``), reads the stored checkpoints after that seq and
puts each one's copy (``witness.to_copy``), oldest first. An empty witness starts at the first signed checkpoint;
checkpoints stored unsigned (before a key was configured) are never published. The witness calls block (a file
append and fsync, an S3 request), so they run in a thread; the decisions' path never waits for them.

**Failures** (the witness unreachable, a bucket without Object Lock) are logged as a warning and counted
(``advisor_audit_checkpoint_publish_failures_total``); nothing is lost, as the checkpoints stay stored and the
next attempt, after the next checkpoint or timer tick, publishes every one still missing, in order. Several workers
may publish the same checkpoint at once: their copies are the same bytes, which the verifier accepts.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.repository import AuditRepository
from service.observability import metrics
from service.services.audit.witness import Witness, to_copy

__all__ = ["CheckpointPublisher"]

logger = logging.getLogger("service.audit.anchor")
_PAGE = 100
TIMEOUT_S = 60.0


class CheckpointPublisher:
    """Copies the stored signed checkpoints the witness lacks to it, oldest first."""

    def __init__(self, engine: AsyncEngine, witness: Witness) -> None:
        self.engine = engine
        self.witness = witness
        self.published = 0  # copies this publisher put
        self.behind = True  # unknown or known to lag: try at the next tick even without a new checkpoint
        self._lock = asyncio.Lock()

    async def publish_pending(self) -> int:
        """Publish every signed checkpoint after the witness's last; how many. Raises on a witness or database
        error (what was published before it stays published)."""
        async with self._lock:
            self.behind = True
            after = await asyncio.to_thread(self.witness.last_seq)
            count = 0
            while True:
                async with self.engine.connect() as conn:
                    page = await AuditRepository(conn).checkpoints_after(after, limit=_PAGE)
                for checkpoint in page:
                    if checkpoint.signature is not None:
                        await asyncio.to_thread(self.witness.publish, checkpoint.seq, to_copy(checkpoint))
                        count += 1
                        self.published += 1
                        metrics.checkpoint_published()
                    after = checkpoint.seq
                if len(page) < _PAGE:
                    break
            self.behind = False
            return count

    async def try_publish(self) -> None:
        """``publish_pending``, a failure logged and counted instead of raised; given up after ``TIMEOUT_S`` (a
        writer stopping waits no longer for a hung witness; what is left is published by the next attempt)."""
        try:
            async with asyncio.timeout(TIMEOUT_S):
                await self.publish_pending()
        except Exception as exc:
            metrics.checkpoint_publish_failed()
            why = f"no answer within {TIMEOUT_S:g} s" if isinstance(exc, TimeoutError) else str(exc)
            logger.warning(
                "publishing audit checkpoints to %s failed (retried at the next checkpoint): %s",
                self.witness.describe(),
                why,
            )
