"""Outage reports: a failure that repeats is logged once with its traceback, then summed up, then closed.

Under load a database outage fails the same way hundreds of times a second: a 6-second Postgres restart failed about
930 audit batches in ``bench/load_and_fault.py``, and a warning with a traceback for each wrote 7 MB of log. An
``OutageReport`` writes instead:

* the first failure: a warning with its traceback (what went wrong, where);
* while failures go on: at most one summary warning per ``interval_s`` with the count since the last line;
* once a success comes ``interval_s`` or more after the last failure: one warning that it works again, with how long
  it failed (first to last failure) and how many failed. Failures that come and go within ``interval_s`` (a flapping
  pool, an overloaded server) stay one outage: one traceback, then summaries, not a traceback per failure;
* ``close()`` (at shutdown) sums up an outage still open.

Metrics still count every failure (``advisor_audit_commit_duration_seconds{outcome="failed"}``). Each process
reports its own failures. Not thread-safe: one event loop reports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["DEFAULT_INTERVAL_S", "OutageReport"]

DEFAULT_INTERVAL_S = 10.0


class OutageReport:
    """Reports one kind of repeated failure of one component (``subject``) to ``logger``.

    ``failed(exc, count)`` for each failure (``count`` of ``items``: decisions refused, polls missed),
    ``succeeded()`` after each success; both are cheap when nothing changes.
    """

    def __init__(
        self,
        logger: logging.Logger,
        subject: str,
        items: str,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.subject, self.items = logger, subject, items
        self.interval_s, self.clock = interval_s, clock
        self._started: float | None = None  # first failure of the open outage; None while things work
        self._last_failed = 0.0
        self._reported_at = 0.0
        self._total = 0  # items failed in this outage
        self._unreported = 0  # of which not yet in a log line

    @property
    def ongoing(self) -> bool:
        return self._started is not None

    def failed(self, exc: BaseException, count: int = 1) -> None:
        now = self.clock()
        self._total += count
        self._last_failed = now
        if self._started is None:
            self._started = self._reported_at = now
            self.logger.warning(
                "%s: %s (%d %s); until it works again, further failures are summed up every %g s",
                self.subject,
                _describe(exc),
                count,
                self.items,
                self.interval_s,
                exc_info=exc,
            )
            return
        self._unreported += count
        if now - self._reported_at >= self.interval_s:
            self.logger.warning(
                "%s: still failing after %.1f s (%d more %s since the last report; last error: %s)",
                self.subject,
                now - self._started,
                self._unreported,
                self.items,
                _describe(exc),
            )
            self._reported_at, self._unreported = now, 0

    def succeeded(self) -> None:
        if self._started is None or self.clock() - self._last_failed < self.interval_s:
            return
        self.logger.warning(
            "%s: working again, after failing for %.1f s (%d %s in all)",
            self.subject,
            self._last_failed - self._started,
            self._total,
            self.items,
        )
        self._started, self._total, self._unreported = None, 0, 0

    def close(self) -> None:
        """At shutdown: one line for an outage still open, with what no line has counted yet."""
        if self._started is None:
            return
        self.logger.warning(
            "%s: shutting down with failures %.1f s ago (failing for %.1f s; %d %s in all, %d since the last report)",
            self.subject,
            self.clock() - self._last_failed,
            self._last_failed - self._started,
            self._total,
            self.items,
            self._unreported,
        )
        self._started, self._total, self._unreported = None, 0, 0


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
