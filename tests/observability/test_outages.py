"""OutageReport: one traceback when failures start, a summary per interval while they go on, one line when over."""

from __future__ import annotations

import logging

import pytest

from service.observability.outages import OutageReport

LOGGER = "service.test.outages"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, bool]]:
    """(message, has a traceback) of each record logged so far, then forget them."""
    lines = [(r.getMessage(), r.exc_info is not None) for r in caplog.records if r.name == LOGGER]
    caplog.clear()
    return lines


def test_a_repeated_failure_is_one_traceback_then_summaries_then_one_recovery_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    clock = Clock()
    report = OutageReport(logging.getLogger(LOGGER), "audit writer", "decision(s) answered 503", clock=clock)

    report.succeeded()  # nothing failed: nothing to say
    assert _lines(caplog) == [] and not report.ongoing

    report.failed(ConnectionRefusedError("refused"), 3)
    ((first, traceback),) = _lines(caplog)
    assert traceback and report.ongoing
    assert first == (
        "audit writer: refused (3 decision(s) answered 503); until it works again, further failures are summed up "
        "every 10 s"
    )

    for _ in range(50):  # within the interval: silent
        clock.now += 0.1
        report.failed(ConnectionRefusedError("refused"), 2)
    assert _lines(caplog) == []

    clock.now += 5.1  # 10.1 s after the first failure
    report.failed(TimeoutError(), 1)
    assert _lines(caplog) == [
        (
            "audit writer: still failing after 10.1 s (101 more decision(s) answered 503 since the last report; "
            "last error: TimeoutError)",
            False,
        )
    ]

    clock.now += 2.0
    report.failed(ConnectionRefusedError("refused"), 4)
    clock.now += 0.5
    report.succeeded()
    assert _lines(caplog) == [("audit writer: working again after 12.6 s (108 decision(s) answered 503 in all)", False)]
    assert not report.ongoing

    report.succeeded()
    report.failed(ConnectionRefusedError("again"), 1)  # a new outage starts with its own traceback
    assert _lines(caplog) == [
        (
            "audit writer: again (1 decision(s) answered 503); until it works again, further failures are summed up "
            "every 10 s",
            True,
        )
    ]
