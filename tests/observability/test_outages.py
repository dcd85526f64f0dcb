"""OutageReport: one traceback when failures start, a summary per interval while they go on, one line when over."""

from __future__ import annotations

import logging

import pytest

from service.observability.outages import OutageReport

LOGGER = "service.test.outages"
FIRST = (
    "audit writer: {} ({} decision(s) answered 503); until it works again, further failures are summed up every 10 s"
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def report(clock: Clock, caplog: pytest.LogCaptureFixture) -> OutageReport:
    caplog.set_level(logging.WARNING, LOGGER)
    return OutageReport(logging.getLogger(LOGGER), "audit writer", "decision(s) answered 503", clock=clock)


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, bool]]:
    """(message, has a traceback) of each record logged so far, then forget them."""
    lines = [(r.getMessage(), r.exc_info is not None) for r in caplog.records if r.name == LOGGER]
    caplog.clear()
    return lines


def test_an_outage_is_one_traceback_then_summaries_then_one_line_when_over(
    report: OutageReport, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    report.succeeded()  # nothing failed: nothing to say
    assert _lines(caplog) == [] and not report.ongoing

    report.failed(ConnectionRefusedError("refused"), 3)
    assert _lines(caplog) == [(FIRST.format("refused", 3), True)]
    assert report.ongoing

    for _ in range(50):  # within the interval: silent
        clock.now += 0.1
        report.failed(ConnectionRefusedError("refused"), 2)
    assert _lines(caplog) == []

    clock.now += 5.1  # 10.1 s after the first failure
    report.failed(TimeoutError(), 1)
    expected = (
        "audit writer: still failing after 10.1 s (101 more decision(s) answered 503 since the last report; "
        "last error: TimeoutError)"
    )
    assert _lines(caplog) == [(expected, False)]

    clock.now += 2.0
    report.failed(ConnectionRefusedError("refused"), 4)  # the last failure, 12.1 s after the first
    clock.now += 0.5
    report.succeeded()  # too soon after a failure to call it over
    assert _lines(caplog) == [] and report.ongoing
    clock.now += 9.5
    report.succeeded()
    expected = "audit writer: working again, after failing for 12.1 s (108 decision(s) answered 503 in all)"
    assert _lines(caplog) == [(expected, False)]
    assert not report.ongoing

    report.succeeded()
    report.failed(ConnectionRefusedError("again"), 1)  # a new outage starts with its own traceback
    assert _lines(caplog) == [(FIRST.format("again", 1), True)]


def test_failures_that_come_and_go_stay_one_outage(
    report: OutageReport, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(30):  # a flapping pool for 15 s: fail, succeed, fail, ... every 0.25 s
        report.failed(TimeoutError("pool"), 1)
        clock.now += 0.25
        report.succeeded()
        clock.now += 0.25
    lines = _lines(caplog)
    assert [traceback for _, traceback in lines] == [True, False]  # one traceback, one summary after 10 s
    assert lines[1][0].startswith("audit writer: still failing after 10.0 s (20 more decision(s)")
    assert report.ongoing


def test_close_sums_up_an_outage_still_open(
    report: OutageReport, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    report.close()
    assert _lines(caplog) == []
    report.failed(ConnectionRefusedError("refused"), 2)
    clock.now += 3
    report.failed(ConnectionRefusedError("refused"), 5)
    clock.now += 1
    caplog.clear()
    report.close()
    expected = (
        "audit writer: shutting down with failures 1.0 s ago (failing for 3.0 s; 7 decision(s) answered 503 in all, "
        "5 since the last report)"
    )
    assert _lines(caplog) == [(expected, False)]
    assert not report.ongoing
