"""Structured logs: one JSON object a line (or a human-readable console line), for every logger in the process.

Every line on stderr has ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` (the message), the line's
own fields, and ``exception`` (the traceback as text, never the values of local variables). A JSON line is at most
``MAX_LINE_CHARS`` (16,384) characters: longer fields are cut in the middle and the line says ``"truncated": true``.
``ADVISOR_LOG_FORMAT``: ``json``, ``console``, or ``auto`` (console when stderr is a terminal). ``ADVISOR_LOG_LEVEL``
sets the level of every logger but one: the audit chain head (``service.audit.anchor``) is logged at any level.

Two kinds of logger write those lines:

- The standard library's loggers (the service's modules, uvicorn, alembic, Litestar): one handler on the root logger
  renders their records with structlog's ``ProcessorFormatter``; their ``extra`` fields become the line's fields.
- The access log (``access_log()``, logger name ``service.access``), written once a request by the request observer,
  is a structlog logger: a few processors, msgspec's encoder and a direct write to stderr, without a standard library
  record (about half the CPU time of a record through a handler). One line a request with ``method``, ``route``
  (template), ``path``, ``status``, ``duration_ms``, ``request_id`` (the service's own), ``client_request_id`` (the
  client's X-Request-ID, or null), ``caller``, ``decision_id``, ``client`` (and ``trace_id`` while tracing is on).
  Request bodies (workload profiles) appear only at ``DEBUG``, as ``body`` on the access line. uvicorn's own access
  log is turned off.
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Final, Literal, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

__all__ = [
    "ACCESS_LOGGER",
    "MAX_LINE_CHARS",
    "LogFormat",
    "access_log",
    "configure_logging",
    "formatter",
    "renders_json",
]

LogFormat = Literal["auto", "json", "console"]

ACCESS_LOGGER: Final = "service.access"

# uvicorn's loggers hand their records to the root logger; its access log is replaced by ours.
_PROPAGATING = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "litestar", "alembic")
_SILENCED = ("uvicorn.access",)
# Loggers whose INFO lines are detail: alembic announces each of its plugins ("setup plugin ...") when imported.
_DETAIL = ("alembic.runtime.plugins",)
# uvicorn's ANSI-coloured copy of the message; what another handler's formatter left on the record
_DROPPED_EXTRAS = ("color_message", "message", "asctime")
_LEADING = ("timestamp", "level", "logger", "event")
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}  # as structlog's add_log_level names them
# Loggers whose INFO lines are records, not chatter: logged at any ADVISOR_LOG_LEVEL. The audit chain head
# (service/services/audit/anchors.py) is tamper evidence that `advisor audit verify --anchors-from` reads back.
_ALWAYS_INFO = ("service.audit.anchor",)

# One lock for both writers of stderr (the handler and the access log), so lines written from threads never mix.
_STDERR_LOCK = threading.RLock()


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def createLock(self) -> None:
        self.lock = _STDERR_LOCK

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class StderrLogger:
    """The end of the structlog chain: writes each rendered line to whatever ``sys.stderr`` is now."""

    __slots__ = ("name",)

    def __init__(self, name: str = "service") -> None:
        self.name = name  # the line's logger

    def msg(self, message: str) -> None:
        with _STDERR_LOCK:
            sys.stderr.write(message + "\n")  # stderr is line-buffered: one write, flushed at the newline

    debug = info = warning = warn = error = critical = exception = fatal = msg


def _timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """When a standard library record was made."""
    created = event_dict["_record"].created
    event_dict["timestamp"] = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return event_dict


def _head(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """What add_log_level, add_logger_name, _timestamp and _leading_keys do for a structlog logger's line, in one
    call: the line's fields after its timestamp, level, logger and event."""
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": _LEVEL_NAMES.get(method_name, method_name),
        "logger": logger.name,
        "event": event_dict.pop("event", None),
        **event_dict,
    }


def _drop_extras(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in _DROPPED_EXTRAS:
        event_dict.pop(key, None)
    return event_dict


def _leading_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """timestamp, level, logger and event first: the order a reader scans a line in."""
    return {**{k: event_dict.pop(k) for k in _LEADING if k in event_dict}, **event_dict}


_encoder = msgspec.json.Encoder(enc_hook=str)  # anything msgspec cannot encode is logged as its str()

# A JSON line is at most this many characters: a field that would make it longer (a traceback, a body logged at
# DEBUG) is cut in its middle, keeping its start and its end (where a traceback names the error).
MAX_LINE_CHARS = 16_384
_KEPT_PER_FIELD = 256  # what cutting leaves of any one field, at least


def _dumps(event_dict: EventDict, **_: object) -> str:
    line = _encoder.encode(event_dict).decode()
    return line if len(line) <= MAX_LINE_CHARS else _shortened(event_dict, line)


def _shortened(event_dict: EventDict, line: str) -> str:
    """The line with its longest text fields cut to fit :data:`MAX_LINE_CHARS`, marked ``"truncated": true``."""
    fields = {**event_dict, "truncated": True}
    for _ in range(3):  # escaping makes the encoded length exceed the text's: a second pass closes the gap
        over = len(line) + len(',"truncated":true') - MAX_LINE_CHARS
        texts = sorted((k for k, v in fields.items() if isinstance(v, str)), key=lambda k: -len(fields[k]))
        for key in texts:
            if over <= 0:
                break
            value = fields[key]
            cut = min(len(value) - _KEPT_PER_FIELD, over + 64)
            if cut > 0:
                fields[key] = _cut_middle(value, cut)
                over -= cut - 48
        line = _encoder.encode(fields).decode()
        if len(line) <= MAX_LINE_CHARS:
            return line
    head = {k: str(fields[k])[:_KEPT_PER_FIELD] for k in _LEADING if k in fields}
    return _encoder.encode({**head, "truncated": True}).decode()  # many long fields: only what names the line


def _cut_middle(value: str, cut: int) -> str:
    kept = len(value) - cut
    head = kept // 4
    return f"{value[:head]}…[{cut} characters cut]…{value[len(value) - (kept - head) :]}"


def renders_json(log_format: LogFormat, stream: TextIO | None = None) -> bool:
    if log_format == "auto":
        stream = sys.stderr if stream is None else stream
        return not (hasattr(stream, "isatty") and stream.isatty())
    return log_format == "json"


def _renderers(as_json: bool) -> list[Processor]:
    """The end of both chains: JSON (the traceback as text: never the values of local variables, which could hold
    profiles or keys), or the console renderer (it prints a plain traceback itself)."""
    if as_json:
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(serializer=_dumps)]
    return [
        structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback, sort_keys=False
        )
    ]


def formatter(log_format: LogFormat = "json") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of the standard library's records: JSON lines, or the console renderer."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _timestamp,
            structlog.stdlib.ExtraAdder(),
            _drop_extras,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _leading_keys,
            *_renderers(renders_json(log_format)),
        ],
    )


class _AsDetail(logging.Filter):
    """Logs a library's INFO records at DEBUG, so they show only when ``ADVISOR_LOG_LEVEL=DEBUG``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= logging.getLogger().getEffectiveLevel()


_access: FilteringBoundLogger | None = None


def access_log() -> FilteringBoundLogger:
    """The access logger, as ``configure_logging`` last configured it (INFO and JSON until it is called)."""
    if _access is None:
        _configure_structlog(logging.INFO, as_json=renders_json("auto"))
    assert _access is not None
    return _access


def _configure_structlog(level: int, *, as_json: bool) -> None:
    """structlog's loggers (the access log): filtered by level when called, rendered by a short chain, written
    straight to stderr, each logger built once (``cache_logger_on_first_use``)."""
    global _access
    structlog.configure(
        processors=[_head, *_renderers(as_json)],
        logger_factory=StderrLogger,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    # Bound now, under this configuration: a later configure_logging (another level) builds another one.
    _access = structlog.get_logger(ACCESS_LOGGER).bind()


def configure_logging(level: str = "INFO", log_format: LogFormat = "auto") -> None:
    """Route every log record of the process through one structlog-rendered handler on the root logger, and
    configure structlog's own loggers the same way.

    Idempotent: a handler installed by an earlier call is replaced, other handlers (a test runner's) are kept.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level)
    for name in _PROPAGATING:  # ADVISOR_LOG_LEVEL, on the root, decides for them too
        named = logging.getLogger(name)
        named.handlers.clear()
        named.setLevel(logging.NOTSET)
        named.propagate = True
    for name in _ALWAYS_INFO:
        logging.getLogger(name).setLevel(logging.INFO)
    for name in _SILENCED:
        silenced = logging.getLogger(name)
        silenced.handlers.clear()
        silenced.propagate = False
    for name in _DETAIL:
        detail = logging.getLogger(name)
        for old in [f for f in detail.filters if isinstance(f, _AsDetail)]:
            detail.removeFilter(old)
        detail.addFilter(_AsDetail())
    _configure_structlog(root.getEffectiveLevel(), as_json=renders_json(log_format))
