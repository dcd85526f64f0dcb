"""The JSON formatter's one-pass path renders every plain record exactly as structlog's processor chain does."""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import PurePosixPath
from typing import Any
from unittest import mock

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from service.observability.logging import JSONLineFormatter, formatter

# Names an extra field or a bound context variable may take: ordinary ones, the four leading keys (an extra field
# overrides them, a context variable does not), what the chain drops, what structlog keeps for itself, and
# "exc_info" (bound as a context variable, the chain turns it into "exception": the one-pass path steps aside).
_NAMES = [
    "method",
    "route",
    "status",
    "caller",
    "event",
    "level",
    "logger",
    "timestamp",
    "color_message",
    "_record",
    "_from_structlog",
    "_name",
    "positional_args",
    "exception",
]
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.builds(uuid.UUID, st.uuids().map(str)),
    st.builds(PurePosixPath, st.text(min_size=1, max_size=10)),  # not JSON: logged as its str() (enc_hook)
)
_LEVELS = st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL, 25])
# A level name as a record may carry it: as logged, or renamed (addLevelName, a handler that rewrites it).
_LEVEL_NAMES = st.sampled_from([None, "WARN", "EXCEPTION", "Warning", "NOTICE", "Level 25"])
_MESSAGES = st.sampled_from(
    [
        ("request", ()),
        ("started %s of %d", ("x", 3)),
        ("value %(a)s", ({"a": 1},)),  # one mapping: LogRecord formats with it as a dict
        ("plain 100%% done", ()),
        ("ünïcode ✓", ()),
        (42, ()),  # not a str: str(msg)
    ]
)


def _record(
    level: int, name: str, message: tuple[Any, tuple[Any, ...]], extra: dict[str, Any], via_logger: bool
) -> logging.LogRecord:
    msg, args = message
    if via_logger:  # Logger.makeRecord refuses extra fields that would overwrite the record's own
        allowed = {k: v for k, v in extra.items() if k not in ("message", "asctime")}
        return logging.getLogger(name).makeRecord(name, level, "/srv/app.py", 7, msg, args, None, extra=allowed)
    record = logging.LogRecord(name, level, "/srv/app.py", 7, msg, args, None)
    record.__dict__.update(extra)
    return record


def _chain(fmt: JSONLineFormatter, record: logging.LogRecord) -> str:
    return structlog.stdlib.ProcessorFormatter.format(fmt, record)


def _chain_refused(*_: Any) -> str:
    raise AssertionError("a plain record went through the processor chain")


@settings(max_examples=400, deadline=None)
@given(
    level=_LEVELS,
    level_name=_LEVEL_NAMES,
    name=st.sampled_from(["service.access", "uvicorn.error", "alembic.runtime.migration"]),
    message=_MESSAGES,
    extra=st.dictionaries(st.sampled_from([*_NAMES, "message", "asctime"]), _VALUES, max_size=6),
    bound=st.dictionaries(st.sampled_from([*_NAMES, "exc_info"]), _VALUES, max_size=3),
    unbound=st.lists(st.sampled_from(_NAMES), max_size=2),
    via_logger=st.booleans(),
)
def test_one_pass_output_equals_the_processor_chain(
    level: int,
    level_name: str | None,
    name: str,
    message: tuple[Any, tuple[Any, ...]],
    extra: dict[str, Any],
    bound: dict[str, Any],
    unbound: list[str],
    via_logger: bool,
) -> None:
    fmt = formatter("json")
    assert isinstance(fmt, JSONLineFormatter)
    with structlog.contextvars.bound_contextvars(**dict.fromkeys(unbound, "gone")):
        pass  # bound, then unbound again: these context variables now hold Ellipsis, which the chain skips
    with structlog.contextvars.bound_contextvars(**bound):
        record = _record(level, name, message, extra, via_logger)
        if level_name is not None:
            record.levelname = level_name
        same = logging.makeLogRecord(dict(record.__dict__))  # one moment, so one timestamp
        expected = _chain(fmt, same)
        if "exc_info" in bound:
            assert fmt.format(record) == expected
        else:
            with mock.patch.object(structlog.stdlib.ProcessorFormatter, "format", _chain_refused):
                assert fmt.format(record) == expected


def _failed() -> logging.LogRecord:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return logging.LogRecord("service", logging.ERROR, "/srv/app.py", 7, "failed", (), sys.exc_info())


def _with_exc_text() -> logging.LogRecord:
    record = _failed()
    logging.Formatter().format(record)  # caches the traceback as exc_text, as another handler's formatter does
    record.exc_info = None
    return record


def _from_structlog() -> logging.LogRecord:
    record = logging.LogRecord("service", logging.INFO, "/srv/app.py", 7, {"event": "hi"}, (), None)
    record._logger = logging.getLogger("service")  # type: ignore[attr-defined]  # as wrap_for_formatter marks it
    record._name = "info"  # type: ignore[attr-defined]
    return record


@pytest.mark.parametrize(
    "make",
    [
        _failed,
        _with_exc_text,
        _from_structlog,
        lambda: logging.LogRecord("service", logging.INFO, "/srv/app.py", 7, "here", (), None, sinfo="Stack (m..."),
    ],
    ids=["exc_info", "exc_text", "structlog", "stack_info"],
)
def test_records_with_a_traceback_stack_or_structlog_origin_go_through_the_chain(make: Any) -> None:
    fmt = formatter("json")
    assert isinstance(fmt, JSONLineFormatter)
    record = make()
    expected = _chain(fmt, logging.makeLogRecord(dict(record.__dict__)))
    chain = structlog.stdlib.ProcessorFormatter.format
    calls: list[logging.LogRecord] = []

    def counted(self: JSONLineFormatter, record: logging.LogRecord) -> str:
        calls.append(record)
        return chain(self, record)

    with mock.patch.object(structlog.stdlib.ProcessorFormatter, "format", counted):
        assert fmt.format(record) == expected
    assert calls == [record]


def test_an_exception_is_rendered_as_text() -> None:
    assert "RuntimeError: boom" in formatter("json").format(_failed())
