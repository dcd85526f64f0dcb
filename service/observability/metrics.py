"""Prometheus metrics: what the service counts, and how ``GET /metrics`` renders them.

Hot-path metrics are module-level prometheus-client objects, so a hook is one call:

- ``advisor_http_requests_total`` / ``advisor_http_request_duration_seconds`` {method, route, status}: every HTTP
  request (``observe_request``, from the request observer in ``service.observability.plugin``). ``route`` is the
  route template (``/v1/decisions/{decision_id}``), never the raw path, so the number of series stays bounded.
- ``advisor_decisions_total`` {family, scaling_method, ruleset_version}: decisions committed to the audit trail
  (``count_decision``, from ``DecisionService.decide``; idempotent replays are not new decisions).
- ``advisor_audit_batch_size`` and ``advisor_audit_commit_duration_seconds`` {outcome}: each group commit of the
  audit writer (``timed_audit_commit``, a decorator on ``AuditWriter._commit``).
- ``advisor_audit_checkpoints_published_total`` and ``advisor_audit_checkpoint_publish_failures_total``: signed
  checkpoints copied to the witness, and attempts that failed (``service.services.audit.publisher``).

Live values are read from the running objects (``LiveSource``) instead of being pushed by them:
``advisor_audit_queue_depth`` (decisions waiting for a batch), ``advisor_db_pool_connections_in_use`` and
``advisor_db_pool_size`` (the SQLAlchemy pool: ``checkedout()``, ``size()``), and ``advisor_ruleset_info``
{version, sha256} = 1 for the active ruleset. In one process they are read at scrape time by a collector.

**Several worker processes** (``advisor serve --workers N``): each process has its own metrics, so with
``PROMETHEUS_MULTIPROC_DIR`` set (``advisor serve`` sets it when N > 1) prometheus-client's multiprocess mode writes
them to memory-mapped files there and ``/metrics``, in whichever worker answers, adds up every worker's files.
Counters and histograms are summed; the live values are written by each worker every ``LIVE_SAMPLE_INTERVAL_S`` (and
by the answering worker just before it renders): queue depth and pool use are summed over the workers,
``advisor_ruleset_info`` shows every ruleset some live worker runs (1) or ran (0). The process and GC collectors are
per process and left out in that mode.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Coroutine, Iterable, Sized
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Final, Protocol, TypeVar

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

__all__ = [
    "AUDIT_BATCH_SIZE",
    "AUDIT_COMMIT_SECONDS",
    "DECISIONS",
    "LIVE_SAMPLE_INTERVAL_S",
    "MULTIPROCESS",
    "REQUESTS",
    "REQUEST_SECONDS",
    "LiveSource",
    "LiveValues",
    "add_live_source",
    "checkpoint_publish_failed",
    "checkpoint_published",
    "count_decision",
    "mark_process_dead",
    "observe_request",
    "remove_live_source",
    "render",
    "sample_live_values",
    "timed_audit_commit",
    "waited_for_chain",
]

MULTIPROCESS: Final[bool] = values.ValueClass is not values.MutexValue
"""prometheus-client chose multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` was set when it was imported)."""
LIVE_SAMPLE_INTERVAL_S: Final = 1.0

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: they would double the series count for a value nobody queries

# Latency buckets, s: group commit makes a decision take a few ms; the runbook's thresholds are 0.25 s and 1 s.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10_000)

REQUESTS = Counter(
    "advisor_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "advisor_http_request_duration_seconds",
    "Time from receiving a request to sending the last byte of its answer, by method, route template and status.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
DECISIONS = Counter(
    "advisor_decisions",
    "Decisions made and committed to the audit trail (idempotent replays excluded).",
    ["family", "scaling_method", "ruleset_version"],
)
AUDIT_BATCH_SIZE = Histogram(
    "advisor_audit_batch_size",
    "Decisions per audit group commit (one transaction).",
    buckets=_BATCH_BUCKETS,
)
AUDIT_COMMIT_SECONDS = Histogram(
    "advisor_audit_commit_duration_seconds",
    "Duration of one audit group commit (lock the chain head, settle idempotency keys, insert, commit), by outcome: "
    "committed or failed (every decision of a failed batch got an error; nothing of it was stored).",
    ["outcome"],
    buckets=_LATENCY_BUCKETS,
)
AUDIT_CHAIN_WAIT_SECONDS = Counter(
    "advisor_audit_chain_wait_seconds",
    "Time audit batches spent waiting for their chain: locking its head row (SELECT ... FOR UPDATE), and appends "
    "that found the head moved by another writer and were redone. Near zero while every writer has a chain of its "
    "own.",
)
AUDIT_CHECKPOINTS_PUBLISHED = Counter(
    "advisor_audit_checkpoints_published",
    "Signed audit checkpoints copied to the witness (ADVISOR_AUDIT_CHECKPOINT_WITNESS: an S3 Object Lock bucket or an "
    "append-only file).",
)
AUDIT_CHECKPOINT_PUBLISH_FAILURES = Counter(
    "advisor_audit_checkpoint_publish_failures",
    "Attempts to copy audit checkpoints to the witness that failed (each retried at the next checkpoint; decisions "
    "are not affected). A rising count means the external copies lag behind.",
)

# --- the request path -----------------------------------------------------------------------------------------

_request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_decision_children: dict[tuple[str, str, str], Counter] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration (the label children are cached: one dict look-up)."""
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:
        labels = (method, route, str(status))
        children = _request_children[key] = (REQUESTS.labels(*labels), REQUEST_SECONDS.labels(*labels))
    children[0].inc()
    children[1].observe(seconds)


def count_decision(family: str | None, scaling_method: str | None, ruleset_version: str) -> None:
    """One more decision committed to the audit trail (label children cached, as for requests)."""
    key = (family or "", scaling_method or "", ruleset_version)
    child = _decision_children.get(key)
    if child is None:
        child = _decision_children[key] = DECISIONS.labels(*key)
    child.inc()


class _WriterStats(Protocol):
    @property
    def failed_batches(self) -> int: ...


class _AuditWriter(Protocol):
    @property
    def stats(self) -> _WriterStats: ...


_W = TypeVar("_W", bound=_AuditWriter)
_B = TypeVar("_B", bound=Sized)


def timed_audit_commit(
    commit: Callable[[_W, _B], Coroutine[Any, Any, None]],
) -> Callable[[_W, _B], Coroutine[Any, Any, None]]:
    """Decorates ``AuditWriter._commit(batch)``: observes the batch size and the commit's duration and outcome.

    ``_commit`` settles every request of its batch itself and raises nothing for a failed transaction; it counts it
    in ``stats.failed_batches``, which is how a failure is told apart here.
    """

    @functools.wraps(commit)
    async def timed(writer: _W, batch: _B) -> None:
        failed_before = writer.stats.failed_batches
        started = perf_counter()
        outcome = "failed"
        try:
            await commit(writer, batch)
            if writer.stats.failed_batches == failed_before:
                outcome = "committed"
        finally:
            AUDIT_COMMIT_SECONDS.labels(outcome).observe(perf_counter() - started)
            AUDIT_BATCH_SIZE.observe(len(batch))

    return timed


def waited_for_chain(seconds: float) -> None:
    """An audit batch waited this long for its chain (the lock on its head, or a contended append redone)."""
    AUDIT_CHAIN_WAIT_SECONDS.inc(seconds)


def checkpoint_published() -> None:
    AUDIT_CHECKPOINTS_PUBLISHED.inc()


def checkpoint_publish_failed() -> None:
    AUDIT_CHECKPOINT_PUBLISH_FAILURES.inc()


# --- live values ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveValues:
    audit_queued: int
    pool_in_use: int | None  # None: the engine's pool does not count (NullPool, StaticPool)
    pool_size: int | None
    ruleset: tuple[str, str] | None  # (version, sha256) of the active ruleset


LiveSource = Callable[[], LiveValues]
"""Reads one application's live values (one per application; a worker process runs one)."""

_sources: list[LiveSource] = []


def add_live_source(source: LiveSource) -> None:
    _sources.append(source)


def remove_live_source(source: LiveSource) -> None:
    if source in _sources:
        _sources.remove(source)


@dataclass(frozen=True, slots=True)
class _Totals:
    audit_queued: int
    pool_in_use: int | None
    pool_size: int | None
    rulesets: frozenset[tuple[str, str]]


def _totals() -> _Totals:
    read = [source() for source in list(_sources)]
    in_use = [v.pool_in_use for v in read if v.pool_in_use is not None]
    sizes = [v.pool_size for v in read if v.pool_size is not None]
    return _Totals(
        audit_queued=sum(v.audit_queued for v in read),
        pool_in_use=sum(in_use) if in_use else None,
        pool_size=sum(sizes) if sizes else None,
        rulesets=frozenset(v.ruleset for v in read if v.ruleset is not None),
    )


_QUEUE_HELP = "Decisions waiting for an audit group commit (not yet in a transaction)."
_IN_USE_HELP = "Database connections checked out of the pool."
_SIZE_HELP = "Database connection pool size (its hard cap: no overflow)."
_RULESET_HELP = "The active ruleset (1); in multiprocess mode also rulesets a live worker ran before (0)."


class _LiveCollector(Collector):
    """One process: the live values, read when scraped."""

    def collect(self) -> Iterable[Metric]:
        totals = _totals()
        yield GaugeMetricFamily("advisor_audit_queue_depth", _QUEUE_HELP, value=totals.audit_queued)
        in_use = GaugeMetricFamily("advisor_db_pool_connections_in_use", _IN_USE_HELP)
        if totals.pool_in_use is not None:
            in_use.add_metric([], totals.pool_in_use)
        yield in_use
        size = GaugeMetricFamily("advisor_db_pool_size", _SIZE_HELP)
        if totals.pool_size is not None:
            size.add_metric([], totals.pool_size)
        yield size
        info = InfoMetricFamily("advisor_ruleset", _RULESET_HELP, labels=["version", "sha256"])
        for version, sha256 in sorted(totals.rulesets):
            info.add_metric([version, sha256], {})
        yield info

    def describe(self) -> Iterable[Metric]:
        return self.collect()


if MULTIPROCESS:
    _QUEUE = Gauge("advisor_audit_queue_depth", _QUEUE_HELP, multiprocess_mode="livesum")
    _IN_USE = Gauge("advisor_db_pool_connections_in_use", _IN_USE_HELP, multiprocess_mode="livesum")
    _SIZE = Gauge("advisor_db_pool_size", _SIZE_HELP, multiprocess_mode="livesum")
    _RULESET = Gauge("advisor_ruleset_info", _RULESET_HELP, ["version", "sha256"], multiprocess_mode="livemax")
    _rulesets_seen: set[tuple[str, str]] = set()
    _scrape_registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(_scrape_registry)  # type: ignore[no-untyped-call]
else:
    REGISTRY.register(_LiveCollector())


def sample_live_values() -> None:
    """Multiprocess mode: write this worker's live values to its files (a no-op in one process)."""
    if not MULTIPROCESS:
        return
    totals = _totals()
    _QUEUE.set(totals.audit_queued)
    _IN_USE.set(totals.pool_in_use or 0)
    _SIZE.set(totals.pool_size or 0)
    for ruleset in _rulesets_seen | totals.rulesets:
        _RULESET.labels(*ruleset).set(1 if ruleset in totals.rulesets else 0)
    _rulesets_seen.update(totals.rulesets)


def mark_process_dead(pid: int | None = None) -> None:
    """Multiprocess mode: drop this worker's live values (its counters and histograms stay in the totals)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid)  # type: ignore[no-untyped-call]


def render(accept: str | None = None) -> tuple[bytes, str]:
    """Every metric (this process's, or in multiprocess mode every worker's) and its content type, in the format
    the ``Accept`` header asks for: Prometheus text (default) or OpenMetrics."""
    encode, content_type = choose_encoder(accept or "")
    if MULTIPROCESS:
        sample_live_values()
        return encode(_scrape_registry), content_type
    return encode(REGISTRY), content_type
