"""Wiring observability into the Litestar application: ``ObservabilityPlugin``.

- ``GET /metrics``: Prometheus exposition (``service.observability.metrics``). Not in the OpenAPI schema and, like
  ``/healthz``, open: no API key (it carries route names, counts, latencies and the active ruleset's version and
  sha256, never callers or profiles; keep it off the public ingress).
- ``RequestObserver``: the outermost ASGI layer (it wraps Litestar's router, so requests that match no route are
  seen too). Per request it assigns the request id (echoed as ``X-Request-ID``), observes the request counter and
  latency histogram, writes the one access-log line and, while tracing is on, makes the server span.
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
from litestar.plugins import InitPlugin
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy.pool import QueuePool

from service.api.auth import Principal
from service.api.context import REQUEST_ID_HEADER, assign_request_id
from service.observability import metrics, tracing
from service.observability.logging import ACCESS_LOGGER, LogFormat, configure_logging

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
    from litestar.types.callable_types import GetLogger
    from opentelemetry.trace import Span
    from sqlalchemy.ext.asyncio import AsyncEngine

    from service.audit import AuditWriter
    from service.registry import RulesetRegistry
    from service.settings import Settings

__all__ = ["METRICS_PATH", "UNMATCHED_ROUTE", "ObservabilityLoggingConfig", "ObservabilityPlugin", "RequestObserver"]

METRICS_PATH: Final = "/metrics"
UNMATCHED_ROUTE: Final = "<unmatched>"
"""The route label of requests no route matched (404, 405): the raw path would make the label set unbounded."""
MAX_LOGGED_BODY: Final = 16_384
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DECISION_LOCATION: Final = b"/v1/decisions/"

access_log = logging.getLogger(ACCESS_LOGGER)


@get(METRICS_PATH, include_in_schema=False, sync_to_thread=False)
def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus exposition of every metric (all workers' in multiprocess mode)."""
    body, content_type = metrics.render(request.headers.get("accept"))
    # Litestar appends the charset to text/* types itself.
    return Response(content=body, media_type=content_type.replace("; charset=utf-8", ""))


class RequestObserver:
    """Per HTTP request: counter and latency histogram, one access-log line, and the server span (tracing on)."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        request_id = assign_request_id(scope)
        answer: list[Any] = [500, None]  # status, Location header: a request that sends nothing counts as a 500
        tracer = tracing.current_tracer()
        # The Location header only names the decision in the span and the access log line.
        wants_location = tracer is not None or access_log.isEnabledFor(logging.INFO)

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
                headers = message.get("headers") or ()
                if wants_location:
                    for name, value in headers:
                        if name.lower() == b"location":
                            answer[1] = value
                message["headers"] = [*headers, (REQUEST_ID_HEADER, request_id)]
            await send(message)

        body: list[bytes] | None = None
        if access_log.isEnabledFor(logging.DEBUG):
            receive, body = _capturing(receive)
        if tracer is None:
            try:
                await self.app(scope, receive, observed_send)
            finally:
                _observe(scope, perf_counter() - started, answer[0], answer[1], body, None)
            return
        method = _method(scope)
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
                "client.address": (scope.get("client") or ("",))[0],
            },
        ) as span:
            try:
                await self.app(scope, receive, observed_send)
            finally:
                _observe(scope, perf_counter() - started, answer[0], answer[1], body, span)


def _method(scope: HTTPScope) -> str:
    method = scope["method"]
    return method if method in _METHODS else "OTHER"


def _capturing(receive: Receive) -> tuple[Receive, list[bytes]]:
    chunks: list[bytes] = []

    async def capture() -> Any:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
        return message

    return capture, chunks


def _observe(
    scope: HTTPScope, seconds: float, status: int, location: bytes | None, body: list[bytes] | None, span: Span | None
) -> None:
    method = _method(scope)
    route: str = scope.get("path_template") or UNMATCHED_ROUTE  # set by Litestar's router once a route matched
    metrics.observe_request(method, route, status, seconds)
    logged = access_log.isEnabledFor(logging.INFO)
    if span is None and not logged:
        return
    decision_id = _decision_id(scope, location)
    request_id = scope.get("state", {}).get("request_id")
    if span is not None:
        if route != UNMATCHED_ROUTE:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if request_id:
            span.set_attribute("advisor.request_id", request_id)
        if decision_id:
            span.set_attribute(tracing.DECISION_ID, decision_id)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
    if not logged:
        return
    user = scope.get("user")
    client = scope.get("client")
    fields: dict[str, Any] = {
        "method": scope["method"],
        "route": route,
        "path": scope["path"],
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "request_id": request_id,
        "caller": user.caller if isinstance(user, Principal) else None,
        "decision_id": decision_id,
        "client": client[0] if client else None,
    }
    if span is not None:
        fields["trace_id"] = format(span.get_span_context().trace_id, "032x")
    if body is not None:
        fields["body"] = b"".join(body)[:MAX_LOGGED_BODY].decode("utf-8", "replace")
    access_log.info("request", extra=fields)


def _decision_id(scope: HTTPScope, location: bytes | None) -> str | None:
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
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        if not isinstance(app.asgi_handler, RequestObserver):
            app.asgi_handler = RequestObserver(app.asgi_handler)
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
