"""Access control: API keys and scopes, the audited caller, local mode, the per-key rate limit, `advisor serve`."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

from service.api.auth import (
    ADMIN,
    AUDIT_READ,
    DECIDE,
    REQUIRED_SCOPE,
    Keyring,
    hash_key,
    is_loopback,
    new_key,
    rate_limit_identity,
)
from service.api.problems import Problem
from service.api.rate_limit import RateLimitMiddleware
from service.app import create_app
from service.cli import main
from service.openapi import render_openapi
from service.rulebook.loader import load_ruleset
from service.settings import ApiKey, Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
RULESET_VERSION = load_ruleset(ROOT / "rules").version
Client = AsyncTestClient  # type: ignore[type-arg]

# The access matrix: every /v1 operation, the scope it needs, and its status when allowed.
OPERATIONS: list[tuple[str, str, str, int]] = [
    ("POST", "/v1/recommendations", DECIDE, 201),
    ("GET", "/v1/decisions", AUDIT_READ, 200),
    ("GET", "/v1/decisions/{decision_id}", AUDIT_READ, 200),
    ("POST", "/v1/decisions/{decision_id}/replay", AUDIT_READ, 200),
    ("GET", "/v1/decisions/{decision_id}/what-if", AUDIT_READ, 200),
    ("GET", "/v1/decisions/{decision_id}/cloudformation", AUDIT_READ, 200),
    ("GET", "/v1/audit/checkpoints", AUDIT_READ, 200),
    ("GET", "/v1/rulesets", AUDIT_READ, 200),
    ("GET", "/v1/rulesets/active", AUDIT_READ, 200),
    ("GET", "/v1/rulesets/activations", AUDIT_READ, 200),
    ("GET", "/v1/rulesets/{version}", AUDIT_READ, 200),
    ("POST", "/v1/rulesets/reload", ADMIN, 200),
    ("POST", "/v1/rulesets/impact", ADMIN, 200),
]
_RULE_FILES = load_ruleset(ROOT / "rules").files
OPEN_PATHS = ["/healthz", "/readyz", "/docs", "/docs/openapi.json", "/static/swagger-ui/swagger-ui.css"]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


async def _call(client: Client, method: str, template: str, headers: dict[str, str], decision_id: str) -> Any:
    path = template.format(decision_id=decision_id, version=RULESET_VERSION)
    body: dict[str, Any] = {"json": WORKED_EXAMPLE} if template == "/v1/recommendations" else {}
    if template == "/v1/rulesets/impact":
        body = {"json": {"files": _RULE_FILES, "limit": 10}}
    return await client.request(method, path, headers=headers, **body)


@pytest.fixture
def key_entries(api_keys: dict[str, str], key_scopes: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    return [{"name": n, "sha256": hash_key(api_keys[n]), "scopes": list(s)} for n, s in key_scopes.items()]


@pytest.fixture
async def decision_id(keyed_client: Client, api_keys: dict[str, str]) -> str:
    response = await keyed_client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers=_bearer(api_keys["decider"]))
    assert response.status_code == 201, response.text
    return str(response.json()["decision_id"])


class TestScopes:
    @pytest.mark.parametrize(
        ("method", "template", "scope", "ok"), OPERATIONS, ids=[f"{m} {p}" for m, p, *_ in OPERATIONS]
    )
    async def test_allowed_with_the_scope_and_denied_without(
        self,
        keyed_client: Client,
        api_keys: dict[str, str],
        key_scopes: dict[str, tuple[str, ...]],
        decision_id: str,
        method: str,
        template: str,
        scope: str,
        ok: int,
    ) -> None:
        missing = await _call(keyed_client, method, template, {}, decision_id)
        _problem(missing, 401, "unauthenticated")
        assert missing.headers["www-authenticate"] == 'Bearer realm="advisor"'
        for wrong in (_bearer(new_key()), {"X-API-Key": new_key()}):
            invalid = await _call(keyed_client, method, template, wrong, decision_id)
            _problem(invalid, 401, "invalid-credentials")
            assert 'error="invalid_token"' in invalid.headers["www-authenticate"]
        for name, scopes in key_scopes.items():
            for headers in (_bearer(api_keys[name]), {"X-API-Key": api_keys[name]}):
                response = await _call(keyed_client, method, template, headers, decision_id)
                if scope in scopes:
                    assert response.status_code == ok, (name, response.text)
                else:
                    assert _problem(response, 403, "insufficient-scope")["required_scope"] == scope, name
                    assert f'scope="{scope}"' in response.headers["www-authenticate"]

    async def test_refused_before_the_body_is_looked_at(self, keyed_client: Client, api_keys: dict[str, str]) -> None:
        not_json = await keyed_client.post(
            "/v1/recommendations", content=b"<xml/>", headers={"content-type": "text/xml"}
        )
        _problem(not_json, 401, "unauthenticated")
        wrong_scope = await keyed_client.post("/v1/recommendations", json={}, headers=_bearer(api_keys["auditor"]))
        _problem(wrong_scope, 403, "insufficient-scope")
        bad_id = await keyed_client.get("/v1/decisions/not-a-uuid")
        _problem(bad_id, 401, "unauthenticated")

    async def test_credential_forms(self, keyed_client: Client, api_keys: dict[str, str]) -> None:
        key, other = api_keys["auditor"], api_keys["everything"]
        for headers in (
            {"Authorization": f"bearer {key}"},
            {"Authorization": f"Bearer   {key}  "},
            {"X-API-Key": key},
            {"Authorization": f"Bearer {key}", "X-API-Key": key},
        ):
            assert (await keyed_client.get("/v1/rulesets", headers=headers)).status_code == 200, headers
        for headers in (
            {"Authorization": f"Bearer {key}", "X-API-Key": other},  # two different keys: refused, not guessed
            {"Authorization": f"Basic {key}"},
            {"Authorization": "Bearer "},
            {"X-API-Key": ""},
            {"X-API-Key": key[:-1]},
            {"X-API-Key": hash_key(key)},  # the stored digest is not a key
        ):
            _problem(await keyed_client.get("/v1/rulesets", headers=headers), 401, "invalid-credentials")

    async def test_admin_implies_no_other_scope(self, keyed_client: Client, api_keys: dict[str, str]) -> None:
        admin = _bearer(api_keys["operator"])
        assert (await keyed_client.post("/v1/rulesets/reload", headers=admin)).status_code == 200
        _problem(await keyed_client.get("/v1/decisions", headers=admin), 403, "insufficient-scope")
        response = await keyed_client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers=admin)
        _problem(response, 403, "insufficient-scope")


def test_every_api_operation_declares_its_scope_and_is_listed_in_the_matrix() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", api_keys=()))
    found = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/v1/"):
            continue
        path = re.sub(r":\w+}", "}", route.path)
        for handler in route.route_handlers:
            methods = handler.http_methods - {"OPTIONS", "HEAD"}
            if not methods:
                continue
            required = handler.opt.get(REQUIRED_SCOPE)  # what ScopeMiddleware reads (layers merged, innermost wins)
            assert required is not None, f"{sorted(methods)} {path} declares no scope: add opt=require_scope(...)"
            found |= {(method, path, required) for method in methods}
    assert found == {(m, p, s) for m, p, s, _ in OPERATIONS}, "add new operations to OPERATIONS, with their scope"


def test_openapi_declares_the_schemes_and_each_operations_scope_and_errors() -> None:
    spec = json.loads(render_openapi())
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    assert schemes["apiKey"]["in"] == "header" and schemes["apiKey"]["name"] == "X-API-Key"
    for method, template, scope, _ in OPERATIONS:
        operation = spec["paths"][template][method.lower()]
        assert operation["security"] == [{"bearer": [scope]}, {"apiKey": [scope]}], template
        for code in ("401", "403", "429"):
            assert "application/problem+json" in operation["responses"][code]["content"], (template, code)
    assert all(op.get("security") for item in spec["paths"].values() for op in item.values())


class TestAudit:
    async def test_the_key_name_is_the_audited_caller(self, keyed_client: Client, api_keys: dict[str, str]) -> None:
        ids = {}
        for name in ("decider", "everything"):
            response = await keyed_client.post(
                "/v1/recommendations", json=WORKED_EXAMPLE, headers={"X-API-Key": api_keys[name]}
            )
            assert response.status_code == 201, response.text
            ids[name] = response.json()["decision_id"]
        auditor = _bearer(api_keys["auditor"])
        for name, decision in ids.items():
            record = (await keyed_client.get(f"/v1/decisions/{decision}", headers=auditor)).json()
            assert record["caller"] == f"key:{name}"
        listed = (await keyed_client.get("/v1/decisions", headers=auditor)).json()["items"]
        assert {item["decision_id"]: item["caller"] for item in listed} == {v: f"key:{k}" for k, v in ids.items()}

    async def test_local_mode_allows_everything_as_the_client_address(self, client: Client) -> None:
        for headers in ({}, {"X-API-Key": "ignored in local mode"}):
            created = await client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers=headers)
            assert created.status_code == 201, created.text
            record = (await client.get(f"/v1/decisions/{created.json()['decision_id']}")).json()
            assert record["caller"] == "local@testclient"  # the test client's address
        assert (await client.post("/v1/rulesets/reload")).status_code == 200
        assert "ratelimit-limit" not in (await client.get("/v1/rulesets")).headers  # local mode is not limited


class TestOpenRoutes:
    async def test_health_and_docs_need_no_key(self, make_client: Any, key_entries: list[dict[str, Any]]) -> None:
        async with make_client(api_keys=key_entries, rate_limit_per_minute=1) as client:
            for path in OPEN_PATHS:
                for headers in ({}, {"X-API-Key": "not a key"}, {}, {}):  # also never rate limited
                    response = await client.get(path, headers=headers)
                    assert response.status_code == 200, (path, response.text[:200])
                    assert "ratelimit-limit" not in response.headers

    async def test_unknown_paths_are_404_without_a_key(self, keyed_client: Client) -> None:
        _problem(await keyed_client.get("/v1/nothing-here"), 404, "not-found")


class TestRateLimit:
    async def test_429_with_retry_after_per_key(
        self, make_client: Any, key_entries: list[dict[str, Any]], api_keys: dict[str, str]
    ) -> None:
        async with make_client(api_keys=key_entries, rate_limit_per_minute=2) as client:
            auditor = _bearer(api_keys["auditor"])
            first = await client.get("/v1/rulesets", headers=auditor)
            assert first.status_code == 200
            assert first.headers["ratelimit-limit"] == "2" and first.headers["ratelimit-remaining"] == "1"
            assert (await client.get("/v1/decisions", headers=auditor)).status_code == 200
            limited = await client.get("/v1/rulesets", headers=auditor)
            body = _problem(limited, 429, "too-many-requests")
            assert "key:auditor" in body["detail"]
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            assert limited.headers["ratelimit-remaining"] == "0"
            # Per key: another key, and the open routes, are unaffected.
            assert (await client.get("/v1/rulesets", headers=_bearer(api_keys["everything"]))).status_code == 200
            assert (await client.get("/healthz")).status_code == 200
            # Requests without a valid key are counted by client address: 401, 401, then 429.
            for expected in (401, 401, 429):
                assert (await client.get("/v1/rulesets", headers={"X-API-Key": "nope"})).status_code == expected


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _scope(caller: str, path: str = "/v1/rulesets") -> Any:
    return {"type": "http", "path": path, "client": (caller, 1), "user": None}


async def _limited(limiter: RateLimitMiddleware, caller: str, path: str = "/v1/rulesets") -> int:
    """The status of one request through the limiter (200 when it lets the request through)."""
    answered: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message: Any) -> None:
        answered.append(message)

    try:
        await limiter.handle(_scope(caller, path), None, send, app)  # type: ignore[arg-type]
    except Problem as problem:
        assert problem.headers is not None
        assert int(problem.headers["Retry-After"]) == int(problem.headers["ratelimit-reset"])
        return problem.status_code
    return int(answered[0]["status"])


class TestRateLimitWindow:
    async def test_the_window_of_a_minute_reopens_and_counts_each_caller_apart(self) -> None:
        clock = _Clock()
        limiter = RateLimitMiddleware(2, "/v1/", rate_limit_identity, clock=clock)
        assert [await _limited(limiter, "10.0.0.1") for _ in range(3)] == [200, 200, 429]
        assert await _limited(limiter, "10.0.0.2") == 200
        assert await _limited(limiter, "10.0.0.1", "/healthz") == 200  # not under the prefix: never counted
        clock.now += 59.5
        assert await _limited(limiter, "10.0.0.1") == 429
        clock.now += 0.5
        assert [await _limited(limiter, "10.0.0.1") for _ in range(3)] == [200, 200, 429]

    async def test_retry_after_counts_down_to_the_end_of_the_window(self) -> None:
        clock = _Clock()
        limiter = RateLimitMiddleware(1, "/v1/", rate_limit_identity, clock=clock)
        await _limited(limiter, "10.0.0.1")
        clock.now += 45.2
        with pytest.raises(Problem) as refused:
            await limiter.handle(_scope("10.0.0.1"), None, None, None)  # type: ignore[arg-type]
        assert refused.value.headers is not None and refused.value.headers["Retry-After"] == "15"
        assert "unauthenticated@10.0.0.1 may make 1 requests a minute" in str(refused.value.detail)

    async def test_closed_windows_are_forgotten(self) -> None:
        clock = _Clock()
        limiter = RateLimitMiddleware(5, "/v1/", rate_limit_identity, clock=clock)
        for n in range(3000):
            await _limited(limiter, f"10.0.{n // 250}.{n % 250}")
        assert limiter.callers == 3000
        clock.now += 61
        for n in range(1100):
            await _limited(limiter, f"10.1.{n // 250}.{n % 250}")
        assert limiter.callers < 2000  # the 3000 closed windows went in a sweep


class TestKeys:
    def test_a_key_matches_only_its_own_digest(self) -> None:
        key = new_key()
        assert len(key) == 43
        ring = Keyring([ApiKey(name="ci", sha256=hash_key(key), scopes=("decide",))])
        principal = ring.lookup(key.encode())
        assert principal is not None and principal.caller == "key:ci" and principal.scopes == {"decide"}
        assert ring.lookup(new_key().encode()) is None
        assert not ring.local_mode and Keyring([]).local_mode

    def test_settings_read_keys_as_json_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        entry = {"name": "ci-pipeline", "sha256": hash_key(new_key()), "scopes": ["decide", "audit:read"]}
        monkeypatch.setenv("ADVISOR_API_KEYS", json.dumps([entry]))
        monkeypatch.setenv("ADVISOR_RATE_LIMIT_PER_MINUTE", "30")
        settings = Settings()
        assert settings.api_keys == (
            ApiKey(name="ci-pipeline", sha256=entry["sha256"], scopes=("decide", "audit:read")),
        )
        assert settings.rate_limit_per_minute == 30

    @pytest.mark.parametrize(
        "entries",
        [
            [{"name": "ci", "key": "the raw key", "scopes": ["decide"]}],  # only digests are configured
            [{"name": "ci", "sha256": "ab" * 32, "scopes": ["write"]}],
            [{"name": "ci", "sha256": "ab" * 32, "scopes": []}],
            [{"name": "ci", "sha256": "not hex", "scopes": ["decide"]}],
            [{"name": "a b", "sha256": "ab" * 32, "scopes": ["decide"]}],
            [
                {"name": "ci", "sha256": "ab" * 32, "scopes": ["decide"]},
                {"name": "ci", "sha256": "cd" * 32, "scopes": ["admin"]},
            ],
            [
                {"name": "a", "sha256": "ab" * 32, "scopes": ["decide"]},
                {"name": "b", "sha256": "ab" * 32, "scopes": ["admin"]},
            ],
        ],
    )
    def test_settings_refuse_malformed_keys(self, entries: list[dict[str, Any]]) -> None:
        with pytest.raises(ValueError, match="api_keys"):
            Settings(api_keys=entries)  # type: ignore[arg-type]


# --- the command line --------------------------------------------------------------------------------------------


@pytest.fixture
def serve_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """A clean environment for `advisor serve`; uvicorn.run is replaced by a recorder (returned)."""
    import uvicorn

    for name in ("ADVISOR_API_KEYS", "ADVISOR_HOST", "ADVISOR_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ADVISOR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'advisor.db'}")
    monkeypatch.setenv("ADVISOR_MIGRATE_ON_START", "0")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    get_settings.cache_clear()
    yield calls
    get_settings.cache_clear()


class TestServe:
    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com", "[::ffff:10.0.0.1]"])
    def test_refuses_a_non_loopback_host_without_keys(self, serve_env: list[dict[str, Any]], host: str) -> None:
        result = CliRunner().invoke(main, ["serve", "--host", host])
        assert result.exit_code == 2, result.output
        assert f"refusing to serve on {host}: no API keys are configured" in result.stderr
        assert serve_env == []  # uvicorn never started

    def test_refuses_a_non_loopback_default_host_without_keys(
        self, serve_env: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ADVISOR_HOST", "0.0.0.0")
        result = CliRunner().invoke(main, ["serve"])
        assert result.exit_code == 2 and serve_env == []

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
    def test_serves_loopback_in_local_mode(self, serve_env: list[dict[str, Any]], host: str) -> None:
        result = CliRunner().invoke(main, ["serve", "--host", host])
        assert result.exit_code == 0, result.output
        # The notice is each worker's JSON log line (test_local_mode_is_logged_at_start_up), not a line of the command.
        assert "local mode" not in result.stderr
        assert [call["host"] for call in serve_env] == [host]

    def test_serves_any_host_with_keys(self, serve_env: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
        entry = {"name": "ci", "sha256": hash_key(new_key()), "scopes": ["decide"]}
        monkeypatch.setenv("ADVISOR_API_KEYS", json.dumps([entry]))
        result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
        assert result.exit_code == 0, result.output
        assert "local mode" not in result.output
        assert [call["host"] for call in serve_env] == ["0.0.0.0"]

    async def test_local_mode_is_logged_at_start_up(self, make_client: Any) -> None:
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        logger = logging.getLogger("service.api.auth")
        logger.addHandler(handler)  # Litestar's logging config does not propagate to caplog's handler
        try:
            async with make_client(api_keys=()):
                pass
        finally:
            logger.removeHandler(handler)
        assert [r.levelno for r in records if r.getMessage().startswith("local mode: no API keys configured")] == [
            logging.WARNING
        ]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.1", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


class TestKeysCommand:
    def test_new_prints_a_key_and_its_entry(self) -> None:
        result = CliRunner().invoke(main, ["keys", "new", "--name", "ci-pipeline", "--scopes", "decide, audit:read"])
        assert result.exit_code == 0, result.output
        lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
        key, entry = lines["key"].strip(), json.loads(lines["entry"])
        assert entry == {"name": "ci-pipeline", "sha256": hash_key(key), "scopes": ["decide", "audit:read"]}
        ring = Keyring(Settings(api_keys=[entry]).api_keys)  # type: ignore[list-item]
        principal = ring.lookup(key.encode())
        assert principal is not None and principal.caller == "key:ci-pipeline"

    def test_hash_prints_the_entry_for_a_key_on_stdin(self) -> None:
        key = new_key()
        result = CliRunner().invoke(main, ["keys", "hash", "--name", "ops", "--scopes", "admin"], input=key + "\n")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"name": "ops", "sha256": hash_key(key), "scopes": ["admin"]}

    def test_refuses_short_keys_and_unknown_scopes(self) -> None:
        short = CliRunner().invoke(main, ["keys", "hash", "--name", "ops", "--scopes", "admin"], input="hunter2\n")
        assert short.exit_code == 2 and "at least 32" in short.stderr
        scope = CliRunner().invoke(main, ["keys", "new", "--name", "ci", "--scopes", "decide,write"])
        assert scope.exit_code == 2 and "scopes" in scope.stderr
