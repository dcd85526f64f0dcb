"""Wiring observability into the Litestar application: ``ObservabilityPlugin``.

- ``GET /metrics``: Prometheus exposition (``service.observability.metrics``). Not in the OpenAPI schema and, like
  ``/healthz``, open: no API key (it carries route names, counts, latencies and the active ruleset's version and
  sha256, never callers or profiles; keep it off the public ingress).
- The request observer: ``RequestObserver``, the first middleware of every route, begins each request (the
  service's own request id, sent as ``X-Request-ID``, and the client's, logged as ``client_request_id``; start
  time; the server span while tracing is on) before authentication and the rate limit; Litestar's ``before_send``
  hook (``observe_send``) sees every response, including the 401/403/429 its exception handling sends and the
  404/405 of requests no route matched (begun by the ``after_exception`` hook, ``observe_exception``, as the router
  refuses them), and with the last body message observes the request counter and latency histogram, writes the one
  access-log line and ends the span.
- Logging: replaces Litestar's logging config with one that calls ``configure_logging`` (each worker process builds
  its own application, so each configures its own logging).
- Live metric sources (audit queue, database pool, active ruleset) are registered for the application's lifetime;
  tracing is configured from ``OTEL_*`` at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.logging.config import BaseLoggingConfig
from litestar.middleware import ASGIMiddleware
from litestar.plugins import InitPlugin
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.pool import QueuePool

from service.api.auth import Principal
from service.api.context import REQUEST_ID_HEADER, assign_request_id
from service.observability import metrics, tracing
from service.observability.logging import LogFormat, access_log, configure_logging

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from litestar.types.callable_types import GetLogger
    from opentelemetry.trace import Span, Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

    from service.services.audit import AuditWriter
    from service.services.registry import RulesetRegistry
    from service.settings import Settings

__all__ = [
    "METRICS_PATH",
    "UNMATCHED_ROUTE",
    "ObservabilityLoggingConfig",
    "ObservabilityPlugin",
    "RequestObserver",
    "observe_exception",
    "observe_send",
]

METRICS_PATH: Final = "/metrics"
UNMATCHED_ROUTE: Final = "<unmatched>"
"""The route label of requests no route matched (404, 405): the raw path would make the label set unbounded."""
MAX_LOGGED_BODY: Final = 16_384
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DECISION_LOCATION: Final = b"/v1/decisions/"
_EXCHANGE: Final = "advisor.exchange"


@get(METRICS_PATH, include_in_schema=False, sync_to_thread=False)
def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus exposition of every metric (all workers' in multiprocess mode)."""
    body, content_type = metrics.render(request.headers.get("accept"))
    # Litestar appends the charset to text/* types itself.
    return Response(content=body, media_type=content_type.replace("; charset=utf-8", ""))


class _Exchange:
    """One request as the observer sees it, kept in ``scope["state"]`` from its start to its last body message."""

    __slots__ = ("body", "client_request_id", "done", "location", "log", "request_id", "span", "started", "status")

    def __init__(self, scope: Scope) -> None:
        self.started = perf_counter()
        self.request_id = assign_request_id(scope)  # the service's own, as the response header's value
        self.client_request_id: str | None = scope["state"]["client_request_id"]  # the client's, if well-formed
        self.log = access_log()
        self.status: int | None = None
        self.location: bytes | None = None
        self.body: list[bytes] | None = None
        self.done = False
        tracer = tracing.current_tracer()
        self.span = None if tracer is None else _server_span(tracer, scope)
        scope["state"][_EXCHANGE] = self

    def finish(self, scope: Scope) -> None:
        """Count, log and end the span, once (a request that sent nothing counts as a 500)."""
        if not self.done:
            self.done = True
            _observe(scope, self, perf_counter() - self.started)


def _exchange(scope: Scope) -> _Exchange:
    """The request's exchange; begun now if no route matched (the router refused it before any middleware ran)."""
    exchange: _Exchange | None = scope["state"].get(_EXCHANGE)
    return _Exchange(scope) if exchange is None else exchange


class RequestObserver(ASGIMiddleware):
    """The first middleware of every route: begins the exchange (start time, request id, server span) before
    authentication, the rate limit and the scope check, so the requests they refuse are observed too.

    What a request answers is seen by :func:`observe_send`, Litestar's ``before_send`` hook, through which every
    message of every response passes, also those Litestar's exception handling sends after this middleware has
    returned (a ``401`` raised by the scope check) and those of requests that matched no route (``404``, ``405``;
    :func:`observe_exception` begins those)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        exchange = _Exchange(scope)
        if exchange.log.is_enabled_for(logging.DEBUG):
            receive, exchange.body = _capturing(receive)
        answered_later = False
        try:
            if exchange.span is None:
                await next_app(scope, receive, send)
            else:
                with trace.use_span(exchange.span, record_exception=False, set_status_on_exception=False):
                    await next_app(scope, receive, send)
        except Exception:
            # Litestar's exception handler answers it, unless the answer had begun (then nothing more is sent).
            answered_later = exchange.status is None
            raise
        finally:
            if not answered_later:
                exchange.finish(scope)


async def observe_send(message: Message, scope: Scope) -> None:
    """``before_send``: the status and Location of the answer, its X-Request-ID header, and the end of the exchange
    with the last body message."""
    if scope["type"] != ScopeType.HTTP:
        return
    if message["type"] == "http.response.start":
        exchange = _exchange(scope)
        exchange.status = message["status"]
        headers = message.get("headers") or ()
        if exchange.span is not None or exchange.log.is_enabled_for(logging.INFO):
            # The Location of a 201 names the decision, in the span and the access line.
            for name, value in headers:
                if name.lower() == b"location":
                    exchange.location = value
        message["headers"] = [*headers, (REQUEST_ID_HEADER, exchange.request_id)]
    elif message["type"] == "http.response.body" and not message.get("more_body", False):
        _exchange(scope).finish(scope)


async def observe_exception(_: Exception, scope: Scope) -> None:
    """``after_exception``: begins the exchange of a request no route matched, before its 404 or 405 is made."""
    if scope["type"] == ScopeType.HTTP:
        _exchange(scope)


def _server_span(tracer: Tracer, scope: Scope) -> Span:
    method = _method(scope)
    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    return tracer.start_span(
        method,
        context=propagate.extract(carrier),
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "client.address": (scope.get("client") or ("",))[0],
        },
    )


def _method(scope: Scope) -> str:
    method: str = scope["method"]  # type: ignore[typeddict-item]
    return method if method in _METHODS else "OTHER"


def _capturing(receive: Receive) -> tuple[Receive, list[bytes]]:
    chunks: list[bytes] = []

    async def capture() -> Any:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
        return message

    return capture, chunks


def _observe(scope: Scope, exchange: _Exchange, seconds: float) -> None:
    method = _method(scope)
    route: str = scope.get("path_template") or UNMATCHED_ROUTE  # set by the router once a route matched
    status = exchange.status or 500
    metrics.observe_request(method, route, status, seconds)
    span, log = exchange.span, exchange.log
    logged = log.is_enabled_for(logging.INFO)
    if span is None and not logged:
        return
    decision_id = _decision_id(scope, exchange.location)
    if span is not None:
        _end_span(span, method, route, status, exchange, decision_id)
    if not logged:
        return
    user = scope.get("user")
    client = scope.get("client")
    fields: dict[str, Any] = {
        "method": scope["method"],  # type: ignore[typeddict-item]
        "route": route,
        "path": scope["path"],
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "request_id": exchange.request_id.decode("latin-1"),
        "client_request_id": exchange.client_request_id,
        "caller": user.caller if isinstance(user, Principal) else None,
        "decision_id": decision_id,
        "client": client[0] if client else None,
    }
    if span is not None:
        fields["trace_id"] = format(span.get_span_context().trace_id, "032x")
    if exchange.body is not None:
        fields["body"] = b"".join(exchange.body)[:MAX_LOGGED_BODY].decode("utf-8", "replace")
    log.info("request", **fields)


def _end_span(span: Span, method: str, route: str, status: int, exchange: _Exchange, decision_id: str | None) -> None:
    if route != UNMATCHED_ROUTE:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("advisor.request_id", exchange.request_id.decode("latin-1"))
    if exchange.client_request_id is not None:
        span.set_attribute("advisor.client_request_id", exchange.client_request_id)
    if decision_id:
        span.set_attribute(tracing.DECISION_ID, decision_id)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


def _decision_id(scope: Scope, location: bytes | None) -> str | None:
    """The decision a request made (the Location of a 201) or is about (the path's decision id)."""
    if location is not None and location.startswith(_DECISION_LOCATION):
        return location[len(_DECISION_LOCATION) :].decode("latin-1")
    value = scope.get("path_params", {}).get("decision_id")
    return None if value is None else str(value)


class ObservabilityLoggingConfig(BaseLoggingConfig):
    """Litestar's logging hook: configures the process's logging (``configure_logging``) when the app is built."""

    def __init__(self, level: str, log_format: LogFormat) -> None:
        self.level = level
        self.log_format: LogFormat = log_format
        self.log_exceptions = "never"  # unhandled errors are logged by the service's own exception handler
        self.exception_logging_handler = None
        self.traceback_line_limit = -1
        self.disable_stack_trace = set()

    def configure(self) -> GetLogger:
        configure_logging(self.level, self.log_format)
        return logging.getLogger

    @staticmethod
    def set_level(logger: Any, level: int) -> None:
        logger.setLevel(level)


class ObservabilityPlugin(InitPlugin):
    """Metrics endpoint, request observer, logging and tracing for one application (see the module docstring)."""

    __slots__ = ("engine", "registry", "settings", "writer")

    def __init__(
        self, settings: Settings, *, engine: AsyncEngine, writer: AuditWriter, registry: RulesetRegistry
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.writer = writer
        self.registry = registry

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(metrics_endpoint)
        app_config.middleware.insert(0, RequestObserver())  # first: outside authentication and the rate limit
        app_config.before_send.append(observe_send)
        app_config.after_exception.append(observe_exception)
        app_config.lifespan.append(self._lifespan)
        app_config.logging_config = ObservabilityLoggingConfig(self.settings.log_level, self.settings.log_format)
        return app_config

    def live_values(self) -> metrics.LiveValues:
        pool = self.engine.sync_engine.pool
        in_use = size = None
        if isinstance(pool, QueuePool):  # NullPool and StaticPool (in-memory SQLite) keep no count
            in_use, size = pool.checkedout(), pool.size()
        active = self.registry.active
        return metrics.LiveValues(
            audit_queued=self.writer.queued,
            pool_in_use=in_use,
            pool_size=size,
            ruleset=(active.version, active.sha256) if active is not None else None,
        )

    @asynccontextmanager
    async def _lifespan(self, _: Litestar) -> AsyncIterator[None]:
        tracing.configure_from_env()
        source = self.live_values
        metrics.add_live_source(source)
        sampler = asyncio.create_task(_sample_forever(), name="metrics-sampler") if metrics.MULTIPROCESS else None
        try:
            yield
        finally:
            if sampler is not None:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            metrics.remove_live_source(source)
            metrics.mark_process_dead()
            tracing.flush()


async def _sample_forever() -> None:
    """Multiprocess mode: keep this worker's live values in its metric files fresh."""
    while True:
        metrics.sample_live_values()
        await asyncio.sleep(metrics.LIVE_SAMPLE_INTERVAL_S)
