"""What the audit writer queues and counts: a decision waiting for its commit, an idempotency key, the stats."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.db.repository import DecisionRow
from service.services.audit.errors import AuditUnavailable, AuditWriteFailed

__all__ = ["IdempotencyKey", "Pending", "WriterStats", "cancel_and_wait", "per_waiter", "utcnow"]


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An Idempotency-Key as sent by ``caller`` (keys are scoped by caller), with the fingerprint of its request."""

    caller: str
    key: str
    request_sha256: str

    @property
    def scoped(self) -> tuple[str, str]:
        return (self.caller, self.key)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True, eq=False)
class Pending:
    row: DecisionRow
    key: IdempotencyKey | None
    future: asyncio.Future[DecisionRow]
    queued_at: float


@dataclass(slots=True)
class WriterStats:
    """Counters since start (per process), for tests and metrics."""

    batches: int = 0  # committed transactions
    unlocked_batches: int = 0  # of which committed by one statement after this writer's own last batch (Postgres)
    contended: int = 0  # such statements that found the head moved by another writer (then: the locked path)
    rows: int = 0  # decisions committed
    replays: int = 0  # requests answered with an earlier decision (Idempotency-Key)
    failed_batches: int = 0
    purged_keys: int = 0
    batch_sizes: collections.Counter[int] = field(default_factory=collections.Counter)


def per_waiter(exc: Exception, batch_size: int) -> AuditWriteFailed:
    """A fresh exception per waiting request (one instance raised in many tasks would share its traceback)."""
    if isinstance(exc, AuditUnavailable):
        failed: AuditWriteFailed = AuditUnavailable(str(exc), retry_after_s=exc.retry_after_s)
    else:
        failed = AuditWriteFailed(f"the audit transaction of {batch_size} decision(s) failed: {type(exc).__name__}")
    failed.__cause__ = exc
    return failed


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task of the writer (a timer, the purger) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
