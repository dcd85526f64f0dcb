"""Structured logs: one JSON access line per request, no profile bodies unless at DEBUG, console format for humans."""

from __future__ import annotations

import copy
import io
import json
import logging
import uuid
from contextlib import redirect_stderr
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from obsutil import Client, MakeClient, json_log_lines, scrape, value
from profiles import WORKED_EXAMPLE

from service.api.auth import hash_key, new_key
from service.observability.logging import ACCESS_LOGGER, access_log, configure_logging, formatter, renders_json

FIELDS = {
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "request_id",
    "client_request_id",
    "caller",
    "decision_id",
    "client",
}


def _marked_profile() -> tuple[dict[str, Any], str]:
    """A profile whose name appears nowhere else: finding it in a log line means the body was logged."""
    marker = f"secret-model-{uuid.uuid4().hex}"
    body = copy.deepcopy(WORKED_EXAMPLE)
    body["name"] = marker
    return body, marker


def _access(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == ACCESS_LOGGER]


async def test_one_json_line_per_request_with_ids_caller_route_status_duration(client: Client) -> None:
    body, marker = _marked_profile()
    with json_log_lines() as lines:
        created = await client.post("/v1/recommendations", json=body, headers={"X-Request-ID": "req-42"})
        decision_id = created.json()["decision_id"]
        read = await client.get(f"/v1/decisions/{decision_id}")
        invalid = await client.post("/v1/recommendations", json={"workload": {}})
        unknown = await client.get("/nowhere")
    assert [r.status_code for r in (created, read, invalid, unknown)] == [201, 200, 422, 404]

    access = _access(lines)
    assert len(access) == 4, access
    post, get, rejected, unmatched = access
    for line in access:
        assert line.keys() >= FIELDS, line
        assert line["event"] == "request"
        assert line["level"] == "info"
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
        assert line["timestamp"].endswith("+00:00")
    assert post == post | {
        "method": "POST",
        "route": "/v1/recommendations",
        "path": "/v1/recommendations",
        "status": 201,
        "request_id": created.headers["x-request-id"],
        "client_request_id": "req-42",
        "caller": "local@testclient",
        "decision_id": decision_id,
        "client": "testclient",
    }
    assert get["route"] == "/v1/decisions/{decision_id}"
    assert (get["status"], get["decision_id"]) == (200, decision_id)
    assert post["request_id"] != "req-42"  # the service's own id; the client's is kept apart
    assert get["request_id"] == read.headers["x-request-id"] != post["request_id"]
    assert get["client_request_id"] is None
    assert (rejected["status"], rejected["decision_id"], rejected["route"]) == (422, None, "/v1/recommendations")
    assert (unmatched["route"], unmatched["path"], unmatched["status"]) == ("<unmatched>", "/nowhere", 404)

    # No profile body anywhere, at INFO: neither in the access lines nor in any other logger's.
    assert all(marker not in json.dumps(line) for line in lines)
    assert all("body" not in line for line in access)


async def test_caller_is_the_api_key_name(make_client: MakeClient) -> None:
    key = new_key()
    entry = {"name": "pipeline", "sha256": hash_key(key), "scopes": ["decide"]}
    async with make_client(api_keys=[entry]) as keyed:
        with json_log_lines() as lines:
            assert (await keyed.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 401
            ok = await keyed.post("/v1/recommendations", json=WORKED_EXAMPLE, headers={"X-API-Key": key})
    assert ok.status_code == 201
    assert [(line["status"], line["caller"]) for line in _access(lines)] == [(401, None), (201, "key:pipeline")]


async def test_profile_body_is_logged_only_at_debug(make_client: MakeClient) -> None:
    body, marker = _marked_profile()
    async with make_client(log_level="DEBUG") as debug_client:
        with json_log_lines() as lines:
            assert (await debug_client.post("/v1/recommendations", json=body)).status_code == 201
    (post,) = _access(lines)
    assert json.loads(post["body"])["name"] == marker


def test_exceptions_are_logged_without_local_variables() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    logger = logging.getLogger("service.test")
    logger.addHandler(handler)
    try:
        profile = "secret-profile-body"  # noqa: F841  # a local a rich traceback would print
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("unhandled error", extra={"path": "/v1/recommendations"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["event"] == "unhandled error"
    assert line["path"] == "/v1/recommendations"
    assert "RuntimeError: boom" in line["exception"]
    assert "secret-profile-body" not in stream.getvalue()


def test_console_format_for_humans() -> None:
    stream = io.StringIO()
    try:
        configure_logging("INFO", "console")
        with redirect_stderr(stream):
            access_log().info("request", method="POST", route="/v1/recommendations", status=201)
            logging.getLogger("service").info("ruleset %s active", "2026.12.0")
    finally:
        configure_logging("INFO", "json")
    access, service = stream.getvalue().splitlines()
    assert not access.startswith("{") and not service.startswith("{")
    assert "request" in access and "route=/v1/recommendations" in access and "status=201" in access
    assert "[service.access]" in access and "ruleset 2026.12.0 active" in service


def test_every_line_is_json_with_the_same_leading_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """The access log (structlog) and the standard library's records render alike: timestamp, level, logger, event
    first, then the fields; values JSON cannot hold as their str()."""
    configure_logging("INFO", "json")
    access_log().info("request", status=201, path=Path("/v1/recommendations"))
    logging.getLogger("service.audit").warning("commit failed", extra={"rows": 3})
    access_log().debug("not at INFO")
    lines = capsys.readouterr().err.splitlines()
    access, audit = (json.loads(line) for line in lines)
    assert list(access) == ["timestamp", "level", "logger", "event", "status", "path"]
    assert access | {"timestamp": None} == {
        "timestamp": None,
        "level": "info",
        "logger": ACCESS_LOGGER,
        "event": "request",
        "status": 201,
        "path": "/v1/recommendations",
    }
    assert list(audit) == ["timestamp", "level", "logger", "event", "rows"]
    assert (audit["level"], audit["logger"], audit["event"], audit["rows"]) == (
        "warning",
        "service.audit",
        "commit failed",
        3,
    )
    for line in (access, audit):
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() == timedelta(0)


async def test_warning_level_turns_the_access_log_off_not_the_metrics(make_client: MakeClient) -> None:
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    async with make_client(log_level="WARNING") as quiet:
        before = value(await scrape(quiet), "advisor_http_requests_total", **labels)
        with json_log_lines() as lines:
            assert (await quiet.get("/healthz")).status_code == 200
        after = value(await scrape(quiet), "advisor_http_requests_total", **labels)
    assert _access(lines) == []
    assert after - before == 1


async def test_refused_requests_are_logged_with_their_request_id(make_client: MakeClient) -> None:
    """Answers made outside the routes' middleware: no route (404), no such method (405), no key (401), too many
    requests (429). Each is logged once and carries its X-Request-ID."""
    key = new_key()
    entry = {"name": "pipeline", "sha256": hash_key(key), "scopes": ["audit:read"]}
    async with make_client(api_keys=[entry], rate_limit_per_minute=1) as keyed:
        with json_log_lines() as lines:
            answers = [
                await keyed.get("/nowhere"),
                await keyed.delete("/v1/recommendations"),
                await keyed.get("/v1/rulesets"),
                await keyed.get("/v1/rulesets", headers={"X-API-Key": key}),
                await keyed.get("/v1/rulesets", headers={"X-API-Key": key, "X-Request-ID": "again-1"}),
            ]
    assert [a.status_code for a in answers] == [404, 405, 401, 200, 429]
    access = _access(lines)
    assert [(line["status"], line["route"]) for line in access] == [
        (404, "<unmatched>"),
        (405, "<unmatched>"),
        (401, "/v1/rulesets"),
        (200, "/v1/rulesets"),
        (429, "/v1/rulesets"),
    ]
    assert [line["request_id"] for line in access] == [a.headers["x-request-id"] for a in answers]
    assert access[-1]["client_request_id"] == "again-1" and access[-1]["caller"] == "key:pipeline"
    assert len({line["request_id"] for line in access}) == len(access)
    assert all(line["duration_ms"] > 0 for line in access)


def test_alembic_plugin_announcements_are_debug_detail(capsys: pytest.CaptureFixture[str]) -> None:
    plugins = logging.getLogger("alembic.runtime.plugins")
    try:
        configure_logging("INFO", "json")
        plugins.info("setup plugin %s", "alembic.autogenerate.schemas")
        plugins.warning("a plugin failed")
        assert [json.loads(line)["level"] for line in capsys.readouterr().err.splitlines()] == ["warning"]
        configure_logging("DEBUG", "json")
        plugins.info("setup plugin %s", "alembic.autogenerate.schemas")
        (line,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        configure_logging("INFO", "json")
    assert (line["level"], line["event"]) == ("debug", "setup plugin alembic.autogenerate.schemas")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("log_format", "stream", "json_lines"),
    [("json", _Tty(), True), ("console", io.StringIO(), False), ("auto", _Tty(), False), ("auto", io.StringIO(), True)],
)
def test_auto_format_is_console_on_a_terminal(log_format: Any, stream: io.StringIO, json_lines: bool) -> None:
    assert renders_json(log_format, stream) is json_lines


def test_library_loggers_come_out_as_json_and_uvicorn_access_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler())  # as uvicorn's default config does
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # as uvicorn does for --log-level warning
    configure_logging("INFO", "json")
    configure_logging("INFO", "json")  # idempotent: still one line per record
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 123, extra={"color_message": "\x1b[1m"})
    logging.getLogger("uvicorn.access").info('127.0.0.1:1 - "GET / HTTP/1.1" 200')
    logging.getLogger("alembic.runtime.migration").info("Running upgrade  -> 0001")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["logger"], line["event"]) for line in lines] == [
        ("uvicorn.error", "Started server process [123]"),
        ("alembic.runtime.migration", "Running upgrade  -> 0001"),
    ]
    assert "color_message" not in lines[0]
