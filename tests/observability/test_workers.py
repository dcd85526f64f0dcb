"""Several worker processes: prometheus-client multiprocess mode, and `advisor serve --workers 2` end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from obsutil import matching, parse, value
from profiles import WORKED_EXAMPLE

from service.rulebook.loader import load_ruleset

ROOT = Path(__file__).resolve().parents[2]

# One "worker": observes requests and a decision, publishes its live values, prints its pid.
_WORKER = textwrap.dedent(
    """
    import os, sys
    from service.observability import metrics
    assert metrics.MULTIPROCESS
    queued, ruleset = int(sys.argv[1]), sys.argv[2]
    metrics.add_live_source(lambda: metrics.LiveValues(queued, 1, 5, (ruleset, ruleset * 8)))
    metrics.observe_request("POST", "/v1/recommendations", 201, 0.004)
    metrics.count_decision("c", "target_tracking", ruleset)
    metrics.sample_live_values()
    print(os.getpid())
    """
)
_SCRAPE = "from service.observability import metrics; print(metrics.render()[0].decode())"


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_multiprocess_mode_adds_up_the_workers(tmp_path: Path) -> None:
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    first = _python(_WORKER, "3", "v1", env=env).strip()
    _python(_WORKER, "4", "v2", env=env)
    samples = parse(_python(_SCRAPE, env=env))
    post = {"method": "POST", "route": "/v1/recommendations", "status": "201"}
    assert value(samples, "advisor_http_requests_total", **post) == 2
    assert value(samples, "advisor_http_request_duration_seconds_count", **post) == 2
    assert value(samples, "advisor_decisions_total", family="c", scaling_method="target_tracking", ruleset_version="v1")
    assert value(samples, "advisor_audit_queue_depth") == 7  # summed over the live workers
    assert value(samples, "advisor_db_pool_connections_in_use") == 2
    assert value(samples, "advisor_db_pool_size") == 10
    assert {s.labels["version"]: s.value for s in matching(samples, "advisor_ruleset_info")} == {"v1": 1, "v2": 1}

    # A worker that exits drops its live values; its counters stay in the totals.
    _python(f"from service.observability import metrics; metrics.mark_process_dead({first})", env=env)
    samples = parse(_python(_SCRAPE, env=env))
    assert value(samples, "advisor_audit_queue_depth") == 4
    assert value(samples, "advisor_db_pool_size") == 5
    assert {s.labels["version"]: s.value for s in matching(samples, "advisor_ruleset_info")} == {"v2": 1}
    assert value(samples, "advisor_http_requests_total", **post) == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spans(stdout: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed (indented JSON objects, one after another)."""
    decoder, spans, at = json.JSONDecoder(), [], 0
    while (at := stdout.find("{", at)) != -1:
        span, at = decoder.raw_decode(stdout, at)
        spans.append(span)
    return spans


@pytest.mark.postgres
def test_two_workers_share_metrics_and_log_json_lines(pg_database_url: str, tmp_path: Path) -> None:
    """`advisor serve --workers 2` on Postgres: /metrics in either worker counts both; JSON logs; spans on."""
    port, pool_size, posts = _free_port(), 3, 12
    env = os.environ | {
        "ADVISOR_DATABASE_URL": pg_database_url,
        "ADVISOR_RULES_DIR": str(ROOT / "rules"),
        "ADVISOR_PORT": str(port),
        "ADVISOR_MIGRATE_ON_START": "0",
        "ADVISOR_DB_POOL_SIZE": str(pool_size),
        "ADVISOR_LOG_FORMAT": "auto",  # stderr is a file: JSON
        "ADVISOR_LOG_LEVEL": "INFO",
        "OTEL_TRACES_EXPORTER": "console",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `advisor serve` makes one for its workers
    advisor = str(Path(sys.executable).parent / "advisor")
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("w") as out, stderr.open("w") as err:
        server = subprocess.Popen([advisor, "serve", "--workers", "2"], env=env, cwd=tmp_path, stdout=out, stderr=err)
    base = f"http://127.0.0.1:{port}"
    requests = 0  # every request answered, for the access log
    try:
        readyz, pids = 0, set()
        deadline = time.monotonic() + 30
        while len(pids) < 2:
            assert time.monotonic() < deadline, f"two workers never answered: {stderr.read_text()[-2000:]}"
            try:
                answer = httpx.get(f"{base}/readyz", timeout=2)  # a new connection each time: either worker
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            readyz += 1
            pids.add(answer.json()["checks"]["worker"])
        decision_ids = set()
        for _ in range(posts):
            answer = httpx.post(f"{base}/v1/recommendations", json=WORKED_EXAMPLE, timeout=10)
            assert answer.status_code == 201, answer.text
            decision_ids.add(answer.json()["decision_id"])
        time.sleep(1.5)  # both workers publish their live values at least once more
        samples = parse(httpx.get(f"{base}/metrics", timeout=5).text)
        requests = readyz + posts + 1
    finally:
        server.terminate()
        server.wait(timeout=20)

    # Metrics: counted by both workers, added up by whichever answered the scrape.
    ready = {"method": "GET", "route": "/readyz", "status": "200"}
    assert value(samples, "advisor_http_requests_total", **ready) == readyz
    post = {"method": "POST", "route": "/v1/recommendations", "status": "201"}
    assert value(samples, "advisor_http_request_duration_seconds_count", **post) == posts
    sha256 = load_ruleset(ROOT / "rules").sha256
    version = load_ruleset(ROOT / "rules").version
    labels = {"family": "c", "scaling_method": "target_tracking", "ruleset_version": version}
    assert value(samples, "advisor_decisions_total", **labels) == posts
    assert value(samples, "advisor_audit_batch_size_sum") == posts
    assert value(samples, "advisor_db_pool_size") == 2 * pool_size  # both workers' pools
    # Per worker, with no request in flight: the audit writer's kept connection (held from its second commit on,
    # see AuditWriter._commit_unlocked) and the ruleset poller's, while a poll runs. One of the two workers
    # answered at least 6 of the 12 POSTs, so at least one connection is kept.
    assert 1 <= value(samples, "advisor_db_pool_connections_in_use") <= 2 * 2
    assert [(s.labels, s.value) for s in matching(samples, "advisor_ruleset_info")] == [
        ({"version": version, "sha256": sha256}, 1.0)
    ]

    # Logs: every stderr line is JSON, the first included (local mode is a warning of each worker's); one access
    # line per request; uvicorn's lines too, its access log off.
    text = stderr.read_text().splitlines()
    assert [line for line in text if not line.startswith("{")] == []
    lines = [json.loads(line) for line in text if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "service.access"]
    assert len(access) == requests
    assert {line["decision_id"] for line in access if line["route"] == "/v1/recommendations"} == decision_ids
    started = [line for line in lines if line["event"].startswith("Started server process")]
    assert len(started) == 2 and {line["logger"] for line in started} == {"uvicorn.error"}
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]

    # Traces: turned on by OTEL_TRACES_EXPORTER alone; flushed when the workers stop.
    spans = _spans(stdout.read_text())
    evaluated = {s["attributes"]["advisor.decision_id"] for s in spans if s["name"] == "advisor.evaluate"}
    assert evaluated == decision_ids
