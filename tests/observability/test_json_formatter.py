"""The JSON formatter's one-pass path renders every plain record exactly as structlog's processor chain does."""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import PurePosixPath
from typing import Any

import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from service.observability.logging import JSONLineFormatter, formatter

# Names an extra field or a bound context variable may take: ordinary ones, the four leading keys (an extra field
# overrides them, a context variable does not), what the chain drops, and what structlog keeps for itself.
_NAMES = st.sampled_from(
    [
        "method",
        "route",
        "status",
        "caller",
        "decision_id",
        "event",
        "level",
        "logger",
        "timestamp",
        "color_message",
        "_record",
        "_from_structlog",
        "exception",
        "trace_id",
    ]
)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.builds(uuid.UUID, st.uuids().map(str)),  # not JSON: logged as its str(), on both paths
    st.builds(PurePosixPath, st.text(min_size=1, max_size=10)),
)
_LEVELS = st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL, 25])


def _record(level: int, name: str, message: str, args: tuple[Any, ...], extra: dict[str, Any]) -> logging.LogRecord:
    record = logging.LogRecord(name, level, "/srv/app.py", 7, message, args, None)
    record.__dict__.update(extra)  # as Logger.makeRecord adds ``extra``
    return record


def _chain(fmt: JSONLineFormatter, record: logging.LogRecord) -> str:
    return structlog.stdlib.ProcessorFormatter.format(fmt, record)


@settings(max_examples=300, deadline=None)
@given(
    level=_LEVELS,
    name=st.sampled_from(["service.access", "uvicorn.error", "alembic.runtime.migration"]),
    message=st.sampled_from(["request", "started %s of %d", "plain 100%% done", "ünïcode ✓"]),
    extra=st.dictionaries(_NAMES, _VALUES, max_size=6),
    bound=st.dictionaries(_NAMES, _VALUES, max_size=3),
)
def test_one_pass_output_equals_the_processor_chain(
    level: int, name: str, message: str, extra: dict[str, Any], bound: dict[str, Any]
) -> None:
    fmt = formatter("json")
    assert isinstance(fmt, JSONLineFormatter)
    args: tuple[Any, ...] = ("x", 3) if "%s" in message else ()
    with structlog.contextvars.bound_contextvars(**bound):
        record = _record(level, name, message, args, extra)
        same = logging.makeLogRecord(dict(record.__dict__))  # one moment, so one timestamp
        assert fmt.format(record) == _chain(fmt, same)


def test_records_with_a_traceback_or_stack_go_through_the_chain() -> None:
    fmt = formatter("json")
    assert isinstance(fmt, JSONLineFormatter)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    failed = logging.LogRecord("service", logging.ERROR, "/srv/app.py", 7, "failed", (), exc_info)
    stacked = logging.LogRecord("service", logging.INFO, "/srv/app.py", 7, "here", (), None, sinfo="Stack (most...)")
    for record in (failed, stacked):
        copy = logging.makeLogRecord(dict(record.__dict__))
        assert fmt.format(record) == _chain(fmt, copy)
    assert "RuntimeError: boom" in fmt.format(failed)
