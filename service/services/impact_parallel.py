"""Impact analysis of the whole audit history on every core (``advisor rules impact --jobs N``).

The replay is pure, so the history splits into contiguous ranges of its order (``created_at``, ``id``) of about
equal size, each replayed by a worker process that streams its own range with bounded memory into a tally
(``ImpactTally``). The tallies merge in the history's order into the report one pass would have made, field for
field (samples and ties included). There are a few ranges per worker, handed out as workers free up, so a worker
slowed by other work on the machine does not hold the others back. Workers start from a fork server that has the
service imported, and tell their progress through a queue.

With one job, or a history too short to be worth splitting, the analysis runs in this process, in one pass.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.db.connection import create_single_use_engine
from service.db.history import HistoryKey, count_history, history_keys, stream_history
from service.engine import CompiledRuleset, compile_ruleset
from service.rulebook.loader import parse_ruleset
from service.services.impact import ImpactAnalysis, ImpactReport, RulesetSource
from service.services.impact_tally import ImpactTally

__all__ = ["HistoryRange", "Progress", "default_jobs", "plan_ranges", "run_impact"]

RANGES_PER_JOB = 4
MIN_RANGE_ROWS = 5000  # below this a range costs more to start than it saves


class Progress(Protocol):
    """Where the replay tells its progress (``service.progress.ProgressBar`` is one)."""

    def advance(self, n: int = 1) -> None: ...

    def set_total(self, total: int | None) -> None: ...


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class HistoryRange:
    """Decisions past ``after`` (None: from the first) up to ``through``, included; ``rows`` of them."""

    after: HistoryKey | None
    through: HistoryKey
    rows: int


def _range_ends(total: int, parts: int) -> list[int]:
    """The offset of the last decision of each of ``parts`` ranges of about equal size over ``total``."""
    return [total * (i + 1) // parts - 1 for i in range(parts)]


async def _count(database_url: str, since: datetime | None, limit: int | None) -> int:
    engine = create_single_use_engine(database_url)
    try:
        total = await count_history(engine, since=since)
    finally:
        await engine.dispose()
    return total if limit is None else min(total, limit)


async def _walk_ranges(database_url: str, since: datetime | None, ends: list[int]) -> AsyncIterator[HistoryRange]:
    """The ranges ending at the offsets ``ends``, each as soon as its last key is found."""
    engine = create_single_use_engine(database_url)
    try:
        after, start = None, 0
        async with aclosing(history_keys(engine, ends, since=since)) as keys:
            for end in ends:
                key = await anext(keys, None)
                if key is None:
                    return
                yield HistoryRange(after, key, end + 1 - start)
                after, start = key, end + 1
    finally:
        await engine.dispose()


async def plan_ranges(
    database_url: str, *, since: datetime | None, limit: int | None, ranges: int
) -> list[HistoryRange]:
    """Up to ``ranges`` contiguous ranges of about equal size covering the decisions ``stream_history(since=since,
    limit=limit)`` reads now; none when there are none."""
    total = await _count(database_url, since, limit)
    if total == 0:
        return []
    return [r async for r in _walk_ranges(database_url, since, _range_ends(total, min(ranges, total)))]


class _OwnRulesets:
    """The stored rulesets of decisions another engine recorded, kept for the worker's life (few exist)."""

    def __init__(self) -> None:
        self.compiled: dict[str, CompiledRuleset] = {}
        self.registry: RulesetSource | None = None  # the RulesetRegistry of the range being replayed

    async def for_sha256(self, sha256: str) -> CompiledRuleset:
        if sha256 not in self.compiled:
            assert self.registry is not None, "each range sets the registry of its connection"
            self.compiled[sha256] = await self.registry.for_sha256(sha256)
        return self.compiled[sha256]


@dataclass
class _Worker:
    database_url: str
    analysis: ImpactAnalysis  # one per worker, so its memo of decided profiles serves every range it replays
    own_rulesets: _OwnRulesets
    progress: Any  # multiprocessing queue of replayed-row counts


_worker: _Worker | None = None


def _start_worker(database_url: str, candidate_files: Mapping[str, str], sample_size: int, progress: Any) -> None:
    global _worker
    candidate = compile_ruleset(parse_ruleset(candidate_files, label="candidate"))
    own = _OwnRulesets()
    analysis = ImpactAnalysis(candidate, own_rulesets=own, sample_size=sample_size)
    _worker = _Worker(database_url, analysis, own, progress)


def _replay_range(since: datetime | None, history_range: HistoryRange) -> ImpactTally:
    assert _worker is not None, "the pool's initializer starts every worker"
    return asyncio.run(_replay_range_async(_worker, since, history_range))


async def _replay_range_async(worker: _Worker, since: datetime | None, history_range: HistoryRange) -> ImpactTally:
    from service.services.registry import RulesetRegistry

    analysis = worker.analysis
    analysis.tally = ImpactTally(sample_size=analysis.tally.sample_size)
    engine = create_single_use_engine(worker.database_url)
    try:
        worker.own_rulesets.registry = RulesetRegistry(engine)
        rows = stream_history(engine, since=since, after=history_range.after, through=history_range.through)
        await analysis.add_stream(rows, on_batch=worker.progress.put)
    finally:
        await engine.dispose()
    return analysis.tally


async def _run_serial(
    database_url: str,
    candidate: CompiledRuleset,
    since: datetime | None,
    limit: int | None,
    sample_size: int,
    bar: Progress | None,
) -> ImpactReport:
    from service.db.readonly import existing_database
    from service.services.registry import RulesetRegistry

    async with existing_database(database_url) as engine:
        # Decisions another engine version recorded are replayed under their own stored ruleset too.
        analysis = ImpactAnalysis(candidate, own_rulesets=RulesetRegistry(engine), sample_size=sample_size)
        await analysis.add_stream(
            stream_history(engine, since=since, limit=limit), on_batch=None if bar is None else bar.advance
        )
        return analysis.report()


def run_impact(
    database_url: str,
    candidate: CompiledRuleset,
    candidate_files: Mapping[str, str],
    *,
    since: datetime | None = None,
    limit: int | None = None,
    jobs: int = 1,
    ranges: int | None = None,
    sample_size: int = 20,
    bar: Progress | None = None,
) -> ImpactReport:
    """The impact of ``candidate`` (compiled from ``candidate_files``) on the history of ``database_url``, replayed
    by ``jobs`` worker processes over ``ranges`` ranges (default: a few per job, none under ``MIN_RANGE_ROWS``;
    giving ``ranges`` splits the history even for one job). The caller checks first that the database exists
    (``existing_database``)."""
    serial = jobs <= 1 and ranges is None
    total = None if serial and bar is None else asyncio.run(_count(database_url, since, limit))
    if bar is not None:
        bar.set_total(total)
    if total is not None and ranges is None:
        serial = serial or total // MIN_RANGE_ROWS < 2
    if serial or total is None:
        return asyncio.run(_run_serial(database_url, candidate, since, limit, sample_size, bar))
    analysis = ImpactAnalysis(candidate, sample_size=sample_size)
    parts = min(total, ranges if ranges is not None else min(jobs * RANGES_PER_JOB, total // MIN_RANGE_ROWS))
    if parts:
        ends = _range_ends(total, parts)
        analysis.tally = _replay_ranges(database_url, candidate_files, since, ends, jobs, sample_size, bar)
    return analysis.report()


def _replay_ranges(
    database_url: str,
    candidate_files: Mapping[str, str],
    since: datetime | None,
    ends: list[int],
    jobs: int,
    sample_size: int,
    bar: Progress | None,
) -> ImpactTally:
    """Replay the ranges ending at ``ends`` in worker processes; their tallies merged. Each range is handed to the
    pool as soon as its end is found, so finding the next ones overlaps with replaying the first."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([__name__])
    progress = context.Queue()
    merged = ImpactTally(sample_size=sample_size)
    with ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(ends))),
        mp_context=context,
        initializer=_start_worker,
        initargs=(database_url, dict(candidate_files), sample_size, progress),
    ) as pool:

        async def submit_each() -> list[Future[ImpactTally]]:
            return [pool.submit(_replay_range, since, r) async for r in _walk_ranges(database_url, since, ends)]

        futures = asyncio.run(submit_each())
        told = _follow(futures, progress, bar)
        for future in futures:
            merged.merge(future.result())
    if bar is not None:
        bar.advance(merged.decisions - told)  # rows whose report was still in the queue
    return merged


def _follow(futures: list[Future[ImpactTally]], progress: Any, bar: Progress | None) -> int:
    """Wait for every range, telling ``bar`` the rows the workers report meanwhile; how many it was told."""
    told = 0
    pending: set[Future[ImpactTally]] = set(futures)
    while pending:
        _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        while True:
            try:
                replayed = progress.get_nowait()
            except queue.Empty:
                break
            told += replayed
            if bar is not None:
                bar.advance(replayed)
    return told
