"""GET /metrics: Prometheus exposition of requests, decisions, audit batches, the pool and the active ruleset."""

from __future__ import annotations

import asyncio
import copy
import re
from collections import Counter
from typing import Any

import pytest
from obsutil import Client, MakeClient, matching, parse, scrape, value
from profiles import WORKED_EXAMPLE

from service.api.auth import hash_key, new_key
from service.db.connection import create_engine
from service.observability import metrics
from service.observability.plugin import ObservabilityPlugin
from service.services.registry import RulesetRegistry
from service.settings import Settings

GPU_BURSTY: dict[str, Any] = {
    "workload": {"bound": "gpu", "model_kind": "llm", "model_memory_gib": 20},
    "traffic": {"peak_rps": 5, "per_instance_rps": 1, "burstiness": "bursty"},
    "sla": {"p99_latency_ms": 2000, "availability": 0.99},
}
REQUEST_HISTOGRAM = "advisor_http_request_duration_seconds"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


async def _decide(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/recommendations", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_requests_decisions_audit_pool_and_ruleset_are_exported(client: Client, database_url: str) -> None:
    before = await scrape(client)
    answers = [await _decide(client, body) for body in (WORKED_EXAMPLE, GPU_BURSTY, WORKED_EXAMPLE)]
    # Concurrent requests share group commits: still one decision counted each.
    answers += await asyncio.gather(*(_decide(client, copy.deepcopy(WORKED_EXAMPLE)) for _ in range(5)))
    assert (await client.get(f"/v1/decisions/{answers[0]['decision_id']}")).status_code == 200
    assert (await client.get("/v1/decisions/00000000-0000-7000-8000-000000000000")).status_code == 404
    assert (await client.get("/no/such/route")).status_code == 404
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Requests: counter and latency histogram per method, route template and status.
    post = {"method": "POST", "route": "/v1/recommendations", "status": "201"}
    assert delta("advisor_http_requests_total", **post) == len(answers)
    assert delta(f"{REQUEST_HISTOGRAM}_count", **post) == len(answers)
    assert delta(f"{REQUEST_HISTOGRAM}_sum", **post) > 0
    assert delta(f"{REQUEST_HISTOGRAM}_bucket", **post, le="+Inf") == len(answers)
    buckets = matching(after, f"{REQUEST_HISTOGRAM}_bucket", **post)
    assert [b.labels["le"] for b in buckets][:3] == ["0.001", "0.0025", "0.005"]
    assert [b.value for b in buckets] == sorted(b.value for b in buckets)  # cumulative
    one = {"method": "GET", "route": "/v1/decisions/{decision_id}"}
    assert delta("advisor_http_requests_total", **one, status="200") == 1
    assert delta("advisor_http_requests_total", **one, status="404") == 1
    assert delta("advisor_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    routes = {s.labels["route"] for s in matching(after, "advisor_http_requests_total")}
    assert not any(UUID.search(route) or "/no/such" in route for route in routes), routes

    # Decisions by family, scaling method and ruleset version, as answered.
    made = Counter((a["instance"]["family"], a["scaling"]["method"], a["ruleset"]["version"]) for a in answers)
    assert len(made) == 2
    for (family, method, version), count in made.items():
        labels = {"family": family, "scaling_method": method, "ruleset_version": version}
        assert delta("advisor_decisions_total", **labels) == count

    # Audit group commits: every decision in exactly one committed batch.
    assert delta("advisor_audit_batch_size_sum") == len(answers)
    batches = delta("advisor_audit_batch_size_count")
    assert 1 <= batches <= len(answers)
    assert delta("advisor_audit_commit_duration_seconds_count", outcome="committed") == batches
    assert delta("advisor_audit_commit_duration_seconds_sum", outcome="committed") > 0
    assert delta("advisor_audit_commit_duration_seconds_count", outcome="failed") == 0

    # Live values: nothing queued, no connection held between requests but the one the audit writer keeps on
    # Postgres for its one-statement appends, the pool's size, the active ruleset.
    assert value(after, "advisor_audit_queue_depth") == 0
    writer_keeps = 1 if database_url.startswith("postgresql") else 0
    assert value(after, "advisor_db_pool_connections_in_use") == writer_keeps
    assert value(after, "advisor_db_pool_size") == Settings().db_pool_size
    active = (await client.get("/v1/rulesets/active")).json()
    assert [(s.labels, s.value) for s in matching(after, "advisor_ruleset_info")] == [
        ({"version": active["version"], "sha256": active["sha256"]}, 1.0)
    ]
    assert {a["ruleset"]["sha256"] for a in answers} == {active["sha256"]}


async def test_idempotent_replays_are_not_new_decisions(client: Client) -> None:
    before = await scrape(client)
    headers = {"Idempotency-Key": "metrics-replay"}
    first = await client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers=headers)
    again = await client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    after = await scrape(client)
    labels = {"family": "c", "scaling_method": "target_tracking", "ruleset_version": first.json()["ruleset"]["version"]}
    assert value(after, "advisor_decisions_total", **labels) - value(before, "advisor_decisions_total", **labels) == 1


async def test_metrics_needs_no_key_and_is_not_in_the_api_schema(make_client: MakeClient) -> None:
    entry = {"name": "ci", "sha256": hash_key(new_key()), "scopes": ["decide"]}
    async with make_client(api_keys=[entry], rate_limit_per_minute=1) as keyed:
        assert (await keyed.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 401
        for _ in range(3):  # open, and never rate limited
            samples = await scrape(keyed)
        assert value(samples, "advisor_http_requests_total", method="POST", route="/v1/recommendations", status="401")
        spec = (await keyed.get("/docs/openapi.json")).json()
        assert "/metrics" not in spec["paths"]


async def test_openmetrics_when_asked_for(client: Client) -> None:
    response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.text.endswith("# EOF\n")
    assert "advisor_ruleset_info" in response.text


async def test_pool_gauge_counts_checked_out_connections(database_url: str) -> None:
    settings = Settings(database_url=database_url, db_pool_size=3)
    engine = create_engine(settings)

    class Writer:  # the plugin reads only the queue length of the writer
        queued = 2

    plugin = ObservabilityPlugin(settings, engine=engine, writer=Writer(), registry=RulesetRegistry(engine))  # type: ignore[arg-type]
    metrics.add_live_source(plugin.live_values)
    try:
        async with engine.connect(), engine.connect():
            samples = parse(metrics.render()[0].decode())
            assert value(samples, "advisor_db_pool_connections_in_use") == 2
            assert value(samples, "advisor_db_pool_size") == 3
            assert value(samples, "advisor_audit_queue_depth") == 2
            assert matching(samples, "advisor_ruleset_info") == []  # none active yet
        assert value(parse(metrics.render()[0].decode()), "advisor_db_pool_connections_in_use") == 0
    finally:
        metrics.remove_live_source(plugin.live_values)
        await engine.dispose()


class _Stats:
    failed_batches = 0


class _FakeWriter:
    def __init__(self, fail: bool) -> None:
        self.stats = _Stats()
        self.fail = fail

    @metrics.timed_audit_commit
    async def _commit(self, batch: list[int]) -> None:
        if self.fail:  # the real writer settles the batch's requests with the error and counts the batch
            self.stats.failed_batches += 1


@pytest.mark.parametrize(("fail", "outcome"), [(False, "committed"), (True, "failed")])
async def test_audit_commit_outcome(fail: bool, outcome: str) -> None:
    def count() -> float:
        return value(
            parse(metrics.render()[0].decode()), "advisor_audit_commit_duration_seconds_count", outcome=outcome
        )

    before = count()
    await _FakeWriter(fail)._commit([1, 2, 3])
    assert count() - before == 1
