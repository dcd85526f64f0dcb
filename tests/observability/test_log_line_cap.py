"""Finding 4 of the security review: one request could write a 200 KB log line (a RecursionError's traceback).
Every JSON line is now at most MAX_LINE_CHARS, cut where it keeps the most meaning."""

from __future__ import annotations

import json
import logging
import sys

from service.observability.logging import MAX_LINE_CHARS, formatter


def _record(msg: str, *, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = sys.exc_info() if exc else None
    record = logging.LogRecord("service.api", logging.ERROR, __file__, 1, msg, (), exc_info)
    record.__dict__.update(extra)
    return record


def _ping(n: int) -> int:  # alternating frames, which tracebacks do not fold (as in PyYAML's composer)
    return _pong(n + 1) + 1


def _pong(n: int) -> int:
    return _ping(n + 1) + 1


def test_a_huge_traceback_is_cut_in_the_middle_keeping_the_error() -> None:
    try:
        _ping(0)
    except RecursionError:
        line = formatter("json").format(_record("unhandled error", exc=True, path="/v1/rulesets/impact"))
    assert len(line) <= MAX_LINE_CHARS
    fields = json.loads(line)
    assert fields["truncated"] is True
    assert (fields["event"], fields["path"]) == ("unhandled error", "/v1/rulesets/impact")
    assert fields["exception"].startswith("Traceback (most recent call last):")
    assert fields["exception"].rstrip().endswith("RecursionError: maximum recursion depth exceeded")
    assert "characters cut]" in fields["exception"]


def test_many_long_fields_leave_what_names_the_line() -> None:
    long = {f"field{i}": "\n" * 20_000 for i in range(200)}  # escaping doubles each: a pass must close the gap
    fields = json.loads(line := formatter("json").format(_record("many", **long)))
    assert len(line) <= MAX_LINE_CHARS
    assert fields["event"] == "many" and fields["truncated"] is True


def test_lines_under_the_cap_are_untouched() -> None:
    fields = json.loads(formatter("json").format(_record("short", body="x" * 1000)))
    assert fields["body"] == "x" * 1000
    assert "truncated" not in fields
