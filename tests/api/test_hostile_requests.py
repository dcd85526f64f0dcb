"""The suite of hostile requests (the security review's, and the bodies of tests/hostile.py) against a running
server with API keys: no answer is a 5xx, no log line is longer than the cap, and none carries a traceback (every
one of them is the client's mistake)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiclients import KEY_ENTRIES, KEYS
from hostile import HOSTILE, RULE_FILES
from profiles import WORKED_EXAMPLE
from served import serve

from service.observability.logging import MAX_LINE_CHARS

JSON = {"content-type": "application/json"}
DECIDE, READ, ADMIN = ({"X-API-Key": KEYS[name]} for name in ("decider", "auditor", "operator"))
PROFILE = json.dumps(WORKED_EXAMPLE)
# The review's forged cursor: base64 of a JSON pair with a time before year 1 once converted to UTC.
FORGED_CURSOR = "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzAwOjAyIiwiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIl0"


def _bomb_files() -> dict[str, str]:
    chain = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]"]
    chain += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 5)]
    fixed = {name: text for name, text in RULE_FILES.items() if not name.startswith("tables/")}
    return fixed | {f"tables/t{i}.yaml": "\n".join(chain) for i in range(62)}


def _impact(files: dict[str, str]) -> bytes:
    return json.dumps({"files": files, "limit": 10}).encode()


# (method, path, headers, body): each a request an attacker holding these keys could send.
REQUESTS: list[tuple[str, str, dict[str, str], bytes | None]] = [
    *(("POST", "/v1/recommendations", {**JSON, **DECIDE}, profile) for profile, _, _, _ in HOSTILE.values()),
    *(("POST", "/v1/rulesets/impact", {**JSON, **ADMIN}, impact) for _, impact, _, _ in HOSTILE.values()),
    ("POST", "/v1/recommendations", {**JSON, **DECIDE}, ('{"sla":"\\u0000",' + PROFILE[1:]).encode()),
    ("POST", "/v1/recommendations", {**JSON, **DECIDE}, ('{"name":"' + "A" * 60_000 + '",' + PROFILE[1:]).encode()),
    ("POST", "/v1/recommendations", {**JSON, **DECIDE}, b"[" * 30_000 + b"]" * 30_000),
    ("POST", "/v1/rulesets/impact", {**JSON, **ADMIN}, _impact(_bomb_files())),
    ("POST", "/v1/rulesets/impact", {**JSON, **ADMIN}, _impact(RULE_FILES | {"ruleset.yaml": "[" * 900 + "]" * 900})),
    ("POST", "/v1/rulesets/impact", {**JSON, **ADMIN}, _impact(RULE_FILES | {"ruleset.yaml": "\x14\x00"})),
    ("POST", "/v1/rulesets/impact", {"content-type": "text/plain", **ADMIN}, _impact(RULE_FILES)),
    ("GET", f"/v1/decisions?limit=1&cursor={FORGED_CURSOR}", READ, None),
    ("GET", "/v1/decisions?limit=1&cursor=99999999999999999-" + "f" * 32, READ, None),
    ("GET", "/v1/rulesets/x%00y", READ, None),
    ("GET", "/v1/rulesets/x%01y", READ, None),
    ("GET", "/v1/decisions?ruleset_version=x%00y", READ, None),
    ("GET", "/v1/decisions?since=2026-01-01T00:00:00%00Z", READ, None),
    ("GET", "/v1/decisions?since=0001-01-01T00:00:00%2B00:02", READ, None),
    ("POST", "/v1/recommendations?ruleset_version=x%00y", {**JSON, **DECIDE}, PROFILE.encode()),
    ("POST", "/v1/decisions/00000000-0000-0000-0000-000000000000/replay?ruleset_version=x%00y", READ, None),
    ("GET", "/v1/decisions/x%00y", READ, None),
    ("GET", "/v1/decisions/x%00y/what-if", READ, None),
    ("POST", "/v1/recommendations", {**JSON, **DECIDE, "Idempotency-Key": "k" * 300}, PROFILE.encode()),
    ("POST", "/v1/recommendations", {**JSON, **DECIDE, "X-Request-ID": "../" * 100}, PROFILE.encode()),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("hostile")
    settings = {"api_keys": json.dumps(KEY_ENTRIES), "log_format": "json", "log_level": "INFO"}
    with serve(tmp, **settings) as served:
        yield served


@pytest.mark.parametrize(("method", "path", "headers", "body"), REQUESTS, ids=range(len(REQUESTS)))
def test_a_hostile_request_is_answered_as_the_clients_mistake(
    server: tuple[str, Path], method: str, path: str, headers: dict[str, str], body: bytes | None
) -> None:
    base, _ = server
    response = httpx.request(method, base + path, headers=headers, content=body, timeout=60)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


def test_the_log_holds_no_long_line_and_no_traceback(server: tuple[str, Path]) -> None:
    """Runs after the requests above (same module, same server)."""
    base, log = server
    for method, path, headers, body in REQUESTS:  # again, so this test also stands alone
        httpx.request(method, base + path, headers=headers, content=body, timeout=60)
    lines = log.read_text(encoding="utf-8").splitlines()
    accessed: list[dict[str, Any]] = []
    for line in lines:
        assert len(line) <= MAX_LINE_CHARS, line[:300]
        fields = json.loads(line)
        assert "exception" not in fields, fields
        assert fields["level"] not in ("error", "critical"), fields
        if fields.get("logger") == "service.access":
            accessed.append(fields)
    assert len(accessed) >= len(REQUESTS)
    assert all(a["status"] < 500 for a in accessed)
