"""OpenTelemetry: request -> evaluate -> audit commit spans with the decision id; off unless OTEL_* asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from obsutil import Client
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from profiles import WORKED_EXAMPLE

from service.observability import tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, into an in-memory exporter (the global tracer provider is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield exporter
    tracing.disable()
    provider.shutdown()


def _named(finished: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (found,) = [s for s in finished if s.name == name]
    return found


async def test_request_evaluate_and_audit_commit_spans_carry_the_decision_id(
    client: Client, spans: InMemorySpanExporter
) -> None:
    response = await client.post("/v1/recommendations", json=WORKED_EXAMPLE)
    assert response.status_code == 201
    decision_id = response.json()["decision_id"]
    finished = spans.get_finished_spans()

    server = _named(finished, "POST /v1/recommendations")
    evaluate = _named(finished, "advisor.evaluate")
    commit = _named(finished, "advisor.audit.commit")
    assert server.kind == SpanKind.SERVER
    assert server.parent is None
    for child in (evaluate, commit):
        assert child.parent is not None
        assert child.parent.span_id == server.context.span_id
        assert child.context.trace_id == server.context.trace_id
    for span in (server, evaluate, commit):
        assert span.attributes is not None
        assert span.attributes[tracing.DECISION_ID] == decision_id
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/recommendations"
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes["advisor.request_id"] == response.headers["x-request-id"]
    assert server.status.status_code != StatusCode.ERROR
    # evaluate, then the audit commit, both inside the request
    times = [server.start_time, evaluate.start_time, evaluate.end_time, commit.start_time, commit.end_time]
    times.append(server.end_time)
    assert None not in times
    assert times == sorted(times)  # type: ignore[type-var]


async def test_the_callers_traceparent_is_the_parent(client: Client, spans: InMemorySpanExporter) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
    response = await client.get("/healthz", headers={"traceparent": traceparent})
    assert response.status_code == 200
    server = _named(spans.get_finished_spans(), "GET /healthz")
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_SPAN_ID


async def test_unmatched_requests_get_a_span_named_by_method_only(client: Client, spans: InMemorySpanExporter) -> None:
    assert (await client.get("/v1/decisions/x/y/z")).status_code == 404
    (server,) = spans.get_finished_spans()
    assert server.name == "GET"
    assert server.attributes is not None and "http.route" not in server.attributes


async def test_no_spans_while_tracing_is_off(client: Client) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # a provider nobody enabled
    assert tracing.current_tracer() is None
    assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 201
    assert exporter.get_finished_spans() == ()
    provider.shutdown()


@pytest.mark.parametrize(
    ("env", "exporters"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "advisor"}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_SDK_DISABLED": "false"}, ["otlp"]),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, []),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, []),
    ],
)
def test_which_variables_turn_tracing_on(env: dict[str, str], exporters: list[str]) -> None:
    assert tracing.wanted_exporters(env) == exporters


def test_provider_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracing.build_provider({}) is None
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    provider = tracing.build_provider({"OTEL_TRACES_EXPORTER": "console,otlp"})
    assert isinstance(provider, TracerProvider)
    try:
        assert provider.resource.attributes["service.name"] == "advisor"
        exporters = [type(p.span_exporter).__name__ for p in provider._active_span_processor._span_processors]  # type: ignore[attr-defined]
        assert exporters == [ConsoleSpanExporter.__name__, "OTLPSpanExporter"]
    finally:
        provider.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "advisor-eu")
    named = tracing.build_provider({"OTEL_SERVICE_NAME": "advisor-eu", "OTEL_TRACES_EXPORTER": "console"})
    assert named is not None
    assert named.resource.attributes["service.name"] == "advisor-eu"
    named.shutdown()
