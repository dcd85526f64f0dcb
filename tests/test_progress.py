"""Progress of long work: a bar on a terminal, one summary line elsewhere, stdout untouched."""

from __future__ import annotations

import io

import pytest

from service.progress import progress, summary_line


def test_summary_line_says_count_time_and_rate() -> None:
    assert summary_line("impact", 1_000_000, "decisions", 21.3) == "impact: 1,000,000 decisions in 21.3 s (46,948/s)"
    assert summary_line("seed", 0, "decisions", 0.0) == "seed: 0 decisions in 0.0 s"


def test_not_a_terminal_gets_one_line_at_the_end_and_stdout_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    with progress("impact", total=5000, unit="decisions", stream=stream) as bar:
        for _ in range(5):
            bar.advance(1000)
        assert stream.getvalue() == ""  # nothing while the work runs
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("impact: 5,000 decisions in ") and lines[0].endswith("/s)")
    assert capsys.readouterr().out == ""


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("verify", unit="rows") as bar:
        bar.advance(3)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("verify: 3 rows in ")


def _fail_after_ten(stream: io.StringIO) -> None:
    with progress("impact", stream=stream) as bar:
        bar.advance(10)
        raise RuntimeError("stopped")


def test_failed_work_writes_no_summary() -> None:
    stream = io.StringIO()
    with pytest.raises(RuntimeError, match="stopped"):
        _fail_after_ten(stream)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("total", [None, 300])
def test_terminal_gets_a_bar_with_count_and_rate(total: int | None) -> None:
    stream = io.StringIO()
    with progress("impact", total=total, unit="decisions", stream=stream, live=True) as bar:
        bar.advance(100)
        bar.advance(200)
    drawn = stream.getvalue()
    assert "impact" in drawn
    assert ("300/300 decisions" if total else "300 decisions") in drawn
    assert "/s" in drawn
    assert "impact: 300 decisions in" not in drawn  # the bar, not the summary line


def test_a_total_told_later_shows_on_the_bar() -> None:
    stream = io.StringIO()
    with progress("impact", unit="decisions", stream=stream, live=True) as bar:
        bar.set_total(50)
        bar.advance(50)
    assert "50/50 decisions" in stream.getvalue()
