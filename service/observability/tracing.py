"""OpenTelemetry traces: off unless the standard ``OTEL_*`` variables ask for them.

Each request gets a server span (``POST /v1/recommendations``: method and route template) from the request
observer; ``DecisionService.decide`` adds two children, ``advisor.evaluate`` (the rules) and ``advisor.audit.commit``
(queued until the group commit holding the decision committed). All three carry ``advisor.decision_id``. A
``traceparent`` header on the request (W3C Trace Context, or what ``OTEL_PROPAGATORS`` names) makes the server span a
child of the caller's.

**Turned on** (per worker process, at application start-up) when ``OTEL_SDK_DISABLED`` is not ``true`` and any of:

- ``OTEL_TRACES_EXPORTER`` names exporters: ``otlp`` (OTLP over HTTP/protobuf, the shipped exporter), ``console``
  (spans as JSON on stdout); ``none`` keeps tracing off;
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (exporter ``otlp``);
- ``OTEL_SDK_DISABLED=false`` is set explicitly (exporter ``otlp`` to its default endpoint, localhost:4318).

The SDK then reads the other standard variables itself: ``OTEL_SERVICE_NAME`` (default here: ``advisor``),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_*`` (headers,
timeout, compression). If a tracer provider was installed before (``opentelemetry-instrument advisor serve``), it is
used as it is. Off, no span is made at all (not even a no-op one): the request path pays one ``None`` check.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Final

from opentelemetry import trace
from opentelemetry.trace import Tracer, TracerProvider

__all__ = [
    "AUDIT_COMMIT",
    "DECISION_ID",
    "EVALUATE",
    "build_provider",
    "configure_from_env",
    "current_tracer",
    "disable",
    "enable",
    "flush",
    "span",
    "wanted_exporters",
]

logger = logging.getLogger("service.observability")

DECISION_ID: Final = "advisor.decision_id"
EVALUATE: Final = "advisor.evaluate"
AUDIT_COMMIT: Final = "advisor.audit.commit"
INSTRUMENTATION_NAME: Final = "advisor"
DEFAULT_SERVICE_NAME: Final = "advisor"

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_NO_SPAN: Final[AbstractContextManager[None]] = contextlib.nullcontext()


def current_tracer() -> Tracer | None:
    """The tracer spans are made with, or None while tracing is off."""
    return _tracer


def span(name: str, decision_id: uuid.UUID) -> AbstractContextManager[object]:
    """A child span of the current one, with the decision id; nothing at all while tracing is off."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, attributes={DECISION_ID: str(decision_id)})


def enable(provider: TracerProvider) -> None:
    """Make spans with ``provider`` (tests pass one with an in-memory exporter)."""
    global _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer(INSTRUMENTATION_NAME)


def disable() -> None:
    global _tracer, _provider
    _tracer = _provider = None


def flush(timeout_ms: int = 5_000) -> None:
    """Export the spans still buffered (at shutdown)."""
    force_flush = getattr(_provider, "force_flush", None)
    if force_flush is not None:
        force_flush(timeout_ms)


def wanted_exporters(env: Mapping[str, str]) -> list[str]:
    """The span exporters the ``OTEL_*`` variables ask for; empty: tracing stays off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if named:
        return [e for e in named if e != "none"]
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if endpoint or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "false":
        return ["otlp"]
    return []


def build_provider(env: Mapping[str, str]) -> TracerProvider | None:
    """An SDK tracer provider exporting as the ``OTEL_*`` variables say, or None if they do not ask for traces."""
    exporters = wanted_exporters(env)
    if not exporters:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    named_service = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = SdkTracerProvider(
        resource=Resource.create({} if named_service else {SERVICE_NAME: DEFAULT_SERVICE_NAME})
    )
    for name in exporters:
        exporter: SpanExporter
        if name == "console":
            exporter = ConsoleSpanExporter()
        elif name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            if protocol not in (None, "", "http/protobuf"):
                logger.error("OTLP protocol %r is not supported (only http/protobuf): no spans exported", protocol)
                continue
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            logger.error("unknown OTEL_TRACES_EXPORTER %r (known: otlp, console, none): ignored", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_from_env(env: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on if the ``OTEL_*`` variables ask for it (once per process); whether it is on."""
    if _tracer is not None:
        return True
    env = os.environ if env is None else env
    if not wanted_exporters(env):
        return False
    installed = trace.get_tracer_provider()
    if not isinstance(installed, trace.ProxyTracerProvider):  # e.g. by opentelemetry-instrument
        enable(installed)
        return True
    provider = build_provider(env)
    if provider is None:
        return False
    trace.set_tracer_provider(provider)
    enable(provider)
    logger.info("tracing on: exporting spans to %s", ", ".join(wanted_exporters(env)))
    return True
