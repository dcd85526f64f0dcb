"""The audit writer: the one commit boundary for decisions.

**Group commit.** ``AuditWriter.write(row)`` queues the row with a future and returns only once the transaction
holding it has committed (or raises). One flusher task per process takes up to ``max_rows`` queued rows, waiting
at most ``max_wait_ms`` after the oldest one arrived for more to join, and commits them in one transaction with
one multi-row INSERT. While a commit is in flight the next rows queue up, so under load each transaction carries
many decisions and the database cost per decision falls; nothing is ever answered from the queue, so a crash
loses only rows whose requests were not answered yet. If the commit fails, every row of that batch fails.
``max_wait_ms`` defaults to 0: the batches form by themselves while commits are in flight, and a timed wait only
idles the process once every client is waiting for its answer (with 32 clients in a closed loop, a 2 ms wait cost
about a quarter of the throughput in ``bench/http_bench.py``).

**Tamper evidence, one chain per writer.** Each writer appends to a hash chain of its own (``service.db.chain``):
on Postgres it claims a free chain number with a session advisory lock on a connection it keeps (``claim_chain``),
so writers in other workers and pods append to other chains and never wait for each other. Each batch numbers its
rows after its chain's head, chains their hashes, inserts them and moves that head, in one transaction that locks
the head row (``SELECT ... FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` takes the database write lock, and SQLite
keeps chain 1 only) or, for a batch without idempotency keys that follows this writer's own last commit, in one
statement that stores the rows only if the head is still where that commit left it. A chain shared anyway (all
chains held, or an older release appending to chain 1) therefore still never forks; its writers take turns.
Checkpoints (``checkpoints.py``) bind the chains' heads together; ``verify_chain`` (``chain.py``) walks them all.

**Idempotency.** A row may carry an ``IdempotencyKey``; its key row is written in the same transaction as the
decision. A key already stored (and not expired), or claimed earlier in the same batch, answers with the original
decision (same body) or ``IdempotencyConflict`` (different body) instead of storing a new row. Two writers that
take the same new key at once are settled by the key's primary key: the second insert waits for the first
transaction and fails once it commits, and that batch is redone, finding the key (``_commit``).

**Outages.** Errors meaning the database cannot be reached (``service.db.errors``) become ``AuditUnavailable``
(the API answers 503 with Retry-After); the pool's pre-ping and invalidation reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.db.chain import ChainHead
from service.db.connection import write_transaction
from service.db.repository import AuditRepository, DecisionRow
from service.observability import metrics
from service.observability.outages import OutageReport
from service.services.audit.anchors import ChainAnchors
from service.services.audit.batch import (
    IdempotencyKey,
    Pending,
    WriterStats,
    cancel_and_wait,
    per_waiter,
    utcnow,
)
from service.services.audit.checkpoints import Checkpoints
from service.services.audit.claim import ChainClaim
from service.services.audit.compression import DocumentCompression
from service.services.audit.errors import (
    DEFAULT_RETRY_AFTER_S,
    AuditUnavailable,
    AuditWriteFailed,
    IdempotencyConflict,
    translate_unavailable,
)
from service.services.audit.keys import IdempotencyKeys
from service.settings import Settings

# The logger keeps the name it had before the services became a package: log queries and alerts match on it.
logger = logging.getLogger("service.audit")

LOCKED_BATCHES_AFTER_CONTENTION = 8  # several writers take turns: the locked path queues them without retries


class AuditWriter(IdempotencyKeys, ChainClaim):
    """Commits decisions in batches (group commit); ``write`` returns only once its row is durable.

    One per process (one flusher task). ``start`` it in the application's lifespan and ``stop`` it before the
    engine is disposed: ``stop`` refuses new rows, commits every queued one and waits for that commit. A writer
    never started starts itself on the first ``write``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_rows: int = 256,
        max_wait_ms: float = 0.0,
        idempotency_ttl_s: float = 86_400,
        purge_interval_s: float = 60.0,
        purge_batch: int = 1000,
        retry_after_s: int = DEFAULT_RETRY_AFTER_S,
        anchor_every_rows: int = 1000,
        anchor_every_s: float = 60.0,
        max_chains: int = 128,
        checkpoint_every_s: float = 60.0,
        dictionary_samples: int = 256,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {max_wait_ms}")
        self.engine = engine
        self.max_rows = max_rows
        self.max_wait_s = max_wait_ms / 1000
        self.idempotency_ttl = timedelta(seconds=idempotency_ttl_s)
        self.purge_interval_s = purge_interval_s
        self.purge_batch = purge_batch
        self.retry_after_s = retry_after_s
        self.clock = clock
        # The chain head, logged every so many rows or seconds: tamper evidence outside the database (anchors.py).
        self.anchors = ChainAnchors(every_rows=anchor_every_rows, every_s=anchor_every_s)
        self.checkpoints = Checkpoints(engine, every_s=checkpoint_every_s, clock=clock)
        # Profiles and answers stored once per month, zstd-compressed with a dictionary it trains (compression.py).
        self.documents = DocumentCompression(engine, samples=dictionary_samples, clock=clock)
        self.max_chains = max_chains
        self.chain = 1  # the chain this writer appends to (Postgres: claimed with _direct; SQLite: always 1)
        self._chain_claimed = False  # Postgres: _direct holds the advisory lock of self.chain
        self.stats = WriterStats()
        self._queue: collections.deque[Pending] = collections.deque()
        self._in_flight: list[Pending] = []  # the batch being committed
        self._wakeup = asyncio.Event()  # something was queued (or stop was asked)
        self._full = asyncio.Event()  # a full batch is queued (or stop was asked): stop waiting for more
        self._flusher: asyncio.Task[None] | None = None
        self._purger: asyncio.Task[None] | None = None
        self._closing = False
        # Postgres fast path: where this writer's last commit left the chain, and the connection it keeps for it.
        self._postgres = engine.dialect.name == "postgresql"
        self._head: ChainHead | None = None
        self._direct: AsyncConnection | None = None
        self._locked_batches_left = 0  # after a contended attempt: commit this many batches the locked way
        # An unreachable database fails batch after batch: one traceback, then a summary every few seconds.
        self.outage = OutageReport(logger, "audit writer", "decision(s) answered 503")

    @classmethod
    def from_settings(cls, engine: AsyncEngine, settings: Settings) -> AuditWriter:
        writer = cls(
            engine,
            max_rows=settings.audit_batch_max_rows,
            max_wait_ms=settings.audit_batch_max_wait_ms,
            idempotency_ttl_s=settings.idempotency_ttl_s,
            purge_interval_s=settings.idempotency_purge_interval_s,
            purge_batch=settings.idempotency_purge_batch,
            retry_after_s=settings.db_retry_after_s,
            anchor_every_rows=settings.audit_anchor_every_rows,
            anchor_every_s=settings.audit_anchor_every_s,
            max_chains=settings.audit_max_chains,
            checkpoint_every_s=settings.audit_checkpoint_every_s,
            dictionary_samples=settings.audit_dictionary_samples,
        )
        # Signed, every N rows too, copied to the witness: as the settings say (checkpoints.py).
        writer.checkpoints = Checkpoints.from_settings(engine, settings, clock=writer.clock)
        return writer

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the flusher, the purger of expired idempotency keys and the chain-head log (idempotent)."""
        if self._closing:
            raise RuntimeError("the audit writer was stopped; make a new one")
        self._ensure_flusher()
        if self._purger is None:
            self._purger = asyncio.create_task(self._purge_forever(), name="audit-idempotency-purger")

    async def stop(self) -> None:
        """Graceful shutdown: refuse new rows, commit the queued ones, wait for that commit, stop the tasks, log the
        chain head if it moved since its last line."""
        self._closing = True
        self._wakeup.set()
        self._full.set()
        await cancel_and_wait(self._purger)
        if self._flusher is not None:
            await self._flusher
        await self.checkpoints.stop()  # one more checkpoint: this writer's chain as it leaves it
        await self.documents.stop()
        await self._drop_direct()
        await self.anchors.stop()
        # Should the flusher have died, nobody may wait forever.
        self._fail_queued(lambda: AuditUnavailable("the service is shutting down", retry_after_s=self.retry_after_s))
        self.outage.close()

    @property
    def queued(self) -> int:
        return len(self._queue)

    # --- writing ----------------------------------------------------------------------------------------------

    async def write(self, row: DecisionRow, *, idempotency: IdempotencyKey | None = None) -> DecisionRow:
        """Queue ``row`` and return once the transaction holding it committed; the decision that answers.

        That is ``row`` itself, unless ``idempotency`` names a key this caller already used for the same request
        (then the original decision, and ``row`` is not stored). Raises ``IdempotencyConflict`` if the key was used
        for a different request, ``AuditUnavailable`` if the database cannot be reached, ``AuditWriteFailed`` if
        the transaction failed otherwise. Whatever it raises, ``row`` was not stored.
        """
        if self._closing:
            raise AuditUnavailable("the service is shutting down", retry_after_s=self.retry_after_s)
        self._ensure_flusher()
        loop = asyncio.get_running_loop()
        pending = Pending(row, idempotency, loop.create_future(), loop.time())
        self._queue.append(pending)
        self._wakeup.set()
        if len(self._queue) >= self.max_rows:
            self._full.set()
        return await pending.future

    # --- the flusher ------------------------------------------------------------------------------------------

    def _ensure_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_forever(), name="audit-writer")
            # A writer never started starts on its first write, its chain-head and checkpoint timers too.
            self.anchors.start()
            self.checkpoints.start()

    async def _flush_forever(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                await self._wait_for_more()
                batch = self._take_batch()
                if batch:
                    self._in_flight = batch
                    await self._commit(batch)
                    self._in_flight = []
        except BaseException:
            # A bug (the commit path catches every error of a batch) or cancellation: fail the rows in flight and
            # queued rather than leave their requests waiting; the next write starts a new flusher.
            self._queue.extendleft(reversed(self._in_flight))
            self._in_flight = []
            self._fail_queued(lambda: AuditWriteFailed("the audit writer stopped unexpectedly"))
            raise

    async def _wait_for_more(self) -> None:
        """Give rows a moment to join the oldest queued one: until the batch is full or its wait is up."""
        if len(self._queue) >= self.max_rows or self._closing or self.max_wait_s <= 0:
            return
        remaining = self._queue[0].queued_at + self.max_wait_s - asyncio.get_running_loop().time()
        if remaining <= 0:
            return
        self._full.clear()
        if len(self._queue) >= self.max_rows:  # filled between the check and the clear
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await self._full.wait()

    def _take_batch(self) -> list[Pending]:
        batch: list[Pending] = []
        while self._queue and len(batch) < self.max_rows:
            pending = self._queue.popleft()
            if not pending.future.done():  # its request was cancelled before its turn: it is not stored
                batch.append(pending)
        return batch

    @metrics.timed_audit_commit  # batch size, commit duration and outcome
    async def _commit(self, batch: list[Pending]) -> None:
        try:
            answers = await self._commit_once(batch)
        except IntegrityError:
            self.documents.rolled_back()
            # A unique key taken by another writer meanwhile: an idempotency key sent to two workers at once (the
            # other transaction committed it): once more, re-reading the head and the keys.
            logger.info("audit batch hit a unique constraint; retrying once with the head and keys re-read")
            try:
                answers = await self._commit_once(batch)
            except Exception as exc:
                self.documents.rolled_back()
                self._fail_batch(batch, exc)
                return
        except Exception as exc:
            self.documents.rolled_back()
            self._fail_batch(batch, exc)
            return

        self.documents.committed([p.row for p in batch])
        self.outage.succeeded()
        self.stats.batches += 1
        self.stats.batch_sizes[len(batch)] += 1
        stored = 0
        for pending, answer in zip(batch, answers, strict=True):
            if answer is pending.row:
                stored += 1
            elif isinstance(answer, DecisionRow):
                self.stats.replays += 1
        self.stats.rows += stored
        if self._head is not None:
            self.anchors.committed(self._head, stored)
        self.checkpoints.committed(stored)
        for pending, answer in zip(batch, answers, strict=True):
            if pending.future.done():
                continue
            if isinstance(answer, BaseException):
                pending.future.set_exception(answer)
            else:
                pending.future.set_result(answer)

    async def _commit_once(self, batch: list[Pending]) -> list[DecisionRow | IdempotencyConflict]:
        if not self.documents.loaded:
            with translate_unavailable(self.retry_after_s):
                await self.documents.load()
        await self.documents.prepare([p.row for p in batch])
        if self._postgres and self._direct is None:
            await self._claim_chain()
        if self._postgres and self._head is not None and all(p.key is None for p in batch):
            if self._locked_batches_left:
                self._locked_batches_left -= 1
            else:
                try:
                    stored = await self._commit_unlocked(batch, self._head)
                except AuditUnavailable:
                    # The kept connection died (a restart, a failover): once more the locked way, on a pooled
                    # connection the pool pings first. If the database is down, that fails too, as a 503.
                    logger.info("audit writer: its connection was lost; committing this batch on a new one")
                else:
                    if stored is not None:
                        return stored
                    self.stats.contended += 1
                    self._locked_batches_left = LOCKED_BATCHES_AFTER_CONTENTION
        self._head = None
        with translate_unavailable(self.retry_after_s):
            async with write_transaction(self.engine) as conn:
                answers, head = await self._store(AuditRepository(conn), batch, self.clock(), self.chain)
        self._head = head
        return answers

    async def _commit_unlocked(
        self, batch: list[Pending], head: ChainHead
    ) -> list[DecisionRow | IdempotencyConflict] | None:
        """The common case on Postgres, rows without idempotency keys: one statement, committed on its own, that
        appends after the head this writer's last commit left (``append_decisions_if_head``); None, with nothing
        stored, if another writer moved the head since. One round trip instead of BEGIN, lock, append, COMMIT
        and the pool's checkout ping, which took about two thirds of the writer's CPU time in the profile."""
        rows = [p.row for p in batch]
        self._head = None  # unknown until this commits
        started = time.perf_counter()
        try:
            with translate_unavailable(self.retry_after_s):
                if self._direct is None:  # pragma: no cover - _commit_once claims a chain first
                    raise AuditUnavailable("no connection kept", retry_after_s=self.retry_after_s)
                chained = await AuditRepository(self._direct).append_decisions_if_head(
                    rows, head, encoder=self.documents.encoder, written=self.documents.written
                )
        except BaseException:
            await self._drop_direct()
            raise
        if chained is None:
            metrics.waited_for_chain(time.perf_counter() - started)  # done for nothing: another writer moved it
            return None
        self._head = chained[-1].head
        self.stats.unlocked_batches += 1
        return list(rows)

    def _fail_batch(self, batch: list[Pending], exc: Exception) -> None:
        self.stats.failed_batches += 1
        answered = 0  # requests still waiting (a cancelled one gets no answer)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(per_waiter(exc, len(batch)))
                answered += 1
        if not isinstance(exc, AuditUnavailable):
            logger.warning("audit batch of %d decision(s) failed: %s", len(batch), exc, exc_info=exc)
            return
        queued = len(self._queue)
        if queued:
            # Fail fast: the rows that queued up while this batch waited on an unreachable database (up to the
            # connect timeout) would only wait as long again, batch after batch. They get the 503 now; rows that
            # arrive from here on get a fresh attempt.
            answered += self._fail_queued(lambda: per_waiter(exc, queued))
        self.outage.failed(exc, answered)

    def _fail_queued(self, make: Callable[[], AuditWriteFailed]) -> int:
        """Fail every queued row's request; how many were still waiting."""
        failed = 0
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(make())
                failed += 1
        return failed
