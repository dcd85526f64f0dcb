"""Impact analysis behind ``POST /v1/rulesets/impact``: bounded in time, in concurrency and off the event loop.

A candidate ruleset comes from the request, so everything it costs runs in a worker thread (parsing and compiling
its files; replaying the history in batches) while the worker's event loop keeps answering other requests,
``/healthz`` included. A run past its deadline stops between batches (:class:`ImpactDeadlineExceeded`); at most
``concurrency`` runs at once, each holding one pooled connection while it streams the history (:class:`ImpactBusy`
beyond that). ``advisor rules impact`` (the CLI) has neither bound: it runs the same analysis in its own process.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

import anyio
import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.history import HistoryRow, stream_history
from service.engine import CompiledRuleset, compile_ruleset
from service.rulebook.loader import parse_ruleset
from service.services.impact import ImpactAnalysis, ImpactReport, RulesetSource

__all__ = ["ImpactBusy", "ImpactDeadlineExceeded", "ImpactRunner"]

_Batch = list[tuple[HistoryRow, CompiledRuleset | None]]


class ImpactBusy(Exception):
    """``concurrency`` impact runs are under way in this worker already (answered as 503 with Retry-After)."""

    def __init__(self, concurrency: int) -> None:
        super().__init__(f"{concurrency} impact run(s) are under way in this worker; retry when one has finished.")
        self.concurrency = concurrency


class ImpactDeadlineExceeded(Exception):
    """The run took longer than the deadline (answered as 503); ``decisions`` were replayed by then."""

    def __init__(self, deadline_s: float, decisions: int) -> None:
        super().__init__(
            f"the impact run passed its deadline of {deadline_s:g} s after replaying {decisions} decisions; narrow "
            "it with `since` and `limit`, or run `advisor rules impact` against the database, which has no deadline."
        )
        self.deadline_s, self.decisions = deadline_s, decisions


def _compiled_candidate(files: Mapping[str, str]) -> CompiledRuleset:
    return compile_ruleset(parse_ruleset(files, label="candidate"))


def _add_batch(analysis: ImpactAnalysis, batch: _Batch) -> None:
    for row, own in batch:
        analysis.add(row, own)


class ImpactRunner:
    """Runs an analysis over the stored history; ``rulesets`` supplies the stored rulesets of decisions another
    engine version recorded."""

    def __init__(
        self,
        engine: AsyncEngine,
        rulesets: RulesetSource,
        *,
        concurrency: int = 2,
        deadline_s: float = 60.0,
        batch_rows: int = 500,
    ) -> None:
        self.engine, self.rulesets = engine, rulesets
        self.concurrency, self.deadline_s, self.batch_rows = concurrency, deadline_s, batch_rows
        self._slots = anyio.CapacityLimiter(concurrency)

    async def run(
        self, files: Mapping[str, str], *, since: datetime | None, limit: int | None, sample_size: int = 20
    ) -> ImpactReport:
        """The impact of the candidate ruleset ``files``.

        Raises:
            RulesetInvalid: the candidate has errors (every one listed, with file and line).
            ImpactBusy: ``concurrency`` runs are under way already.
            ImpactDeadlineExceeded: the run passed ``deadline_s``.
        """
        try:
            self._slots.acquire_nowait()
        except anyio.WouldBlock:
            raise ImpactBusy(self.concurrency) from None
        try:
            deadline = time.monotonic() + self.deadline_s
            candidate = await anyio.to_thread.run_sync(_compiled_candidate, files)
            analysis = ImpactAnalysis(candidate, own_rulesets=self.rulesets, sample_size=sample_size)
            self._check(deadline, analysis)
            await self._replay(analysis, since=since, limit=limit, deadline=deadline)
            return analysis.report()
        finally:
            self._slots.release()

    async def _replay(
        self, analysis: ImpactAnalysis, *, since: datetime | None, limit: int | None, deadline: float
    ) -> None:
        batch: _Batch = []
        async for row in stream_history(self.engine, since=since, limit=limit):
            own = None
            if row.engine_version != analysis.engine_version:
                own = await self.rulesets.for_sha256(row.ruleset_sha256)
            batch.append((row, own))
            if len(batch) >= self.batch_rows:
                await anyio.to_thread.run_sync(_add_batch, analysis, batch)
                batch = []
                self._check(deadline, analysis)
        if batch:
            await anyio.to_thread.run_sync(_add_batch, analysis, batch)

    def _check(self, deadline: float, analysis: ImpactAnalysis) -> None:
        if time.monotonic() > deadline:
            raise ImpactDeadlineExceeded(self.deadline_s, analysis.decisions)
