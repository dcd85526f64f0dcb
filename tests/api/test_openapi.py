"""The committed OpenAPI document matches the code, and the running API conforms to it."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from service.api.auth import hash_key, new_key
from service.api.body_schema import body_components
from service.app import create_app
from service.db.migrate import upgrade
from service.openapi import render_openapi
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_matches_the_code() -> None:
    """Regenerate with `.venv/bin/python -m service.openapi > openapi/openapi.json`."""
    assert (ROOT / "openapi" / "openapi.json").read_text() == render_openapi()


def test_every_operation_is_documented() -> None:
    spec = json.loads(render_openapi())
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            assert operation.get("operationId"), f"{method} {path} has no operationId"
            if method == "post":
                assert "422" in operation["responses"], f"{method} {path} documents no 422"
    post = spec["paths"]["/v1/recommendations"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["schema"]["examples"]
    assert examples[0]["traffic"] == {"peak_rps": 150, "per_instance_rps": 20, "burstiness": "steady"}


def _objects(node: object) -> list[dict[str, object]]:
    """Every schema of type ``object`` with properties in ``node``."""
    if isinstance(node, list):
        return [found for item in node for found in _objects(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if node.get("type") == "object" and "properties" in node else []
    return own + [found for value in node.values() for found in _objects(value)]


def test_request_bodies_are_documented_as_the_server_checks_them() -> None:
    """Every body object refuses unknown fields (as msgspec does), and the published components are the ones the
    server validates rejected bodies against."""
    spec = json.loads(render_openapi())
    impact = spec["paths"]["/v1/rulesets/impact"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    published = spec["components"]["schemas"] | {"ImpactRequest": impact}  # the impact body is given in place
    for name, checked in body_components().items():
        assert published[name] == _without_null_defaults(checked), name  # the document drops `default: null`
    bodies = [
        operation["requestBody"]["content"]["application/json"]["schema"]
        for item in spec["paths"].values()
        for operation in item.values()
        if "requestBody" in operation
    ]
    assert len(bodies) == 2
    reachable = _objects(bodies) + _objects([published[name] for name in body_components()])
    assert len(reachable) >= 7 and all(obj.get("additionalProperties") is False for obj in reachable)
    files = impact["properties"]["files"]
    assert files["required"] == ["ruleset.yaml", "catalog.yaml"] and files["minProperties"] == 6  # tables, too


def _without_null_defaults(node: object) -> object:
    if isinstance(node, list):
        return [_without_null_defaults(item) for item in node]
    if isinstance(node, dict):
        return {k: _without_null_defaults(v) for k, v in node.items() if not (k == "default" and v is None)}
    return node


def test_every_reference_resolves() -> None:
    text = render_openapi()
    spec = json.loads(text)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in spec["components"]["schemas"], ref


def test_the_problem_code_conventions_are_stated() -> None:
    description = json.loads(render_openapi())["info"]["description"]
    assert "kebab-case" in description and "snake_case" in description


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(tmp_path_factory: pytest.TempPathFactory, **overrides: object) -> Iterator[str]:
    """The real app under uvicorn on loopback, on a fresh SQLite database, with these Settings overrides."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('schemathesis') / 'advisor.db'}"
    asyncio.run(upgrade(url))
    port = _free_port()
    app = create_app(Settings(database_url=url, rules_dir=ROOT / "rules", **overrides))  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    else:
        pytest.fail("the service did not become ready")
    yield base
    server.should_exit = True
    thread.join(timeout=10)


# The keyed server's keys: every scope, and one holding only `admin` (403 on everything else).
ALL_SCOPES_KEY, ADMIN_ONLY_KEY = new_key(), new_key()
KEY_ENTRIES = [
    {"name": "all-scopes", "sha256": hash_key(ALL_SCOPES_KEY), "scopes": ["decide", "audit:read", "admin"]},
    {"name": "admin-only", "sha256": hash_key(ADMIN_ONLY_KEY), "scopes": ["admin"]},
]


def _both_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-API-Key": key}


@pytest.fixture(scope="module")
def local_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Local mode: no keys configured."""
    yield from _serve(tmp_path_factory, api_keys=())


@pytest.fixture(scope="module")
def keyed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """API keys configured; a rate limit high enough never to answer 429 here (tests/api/test_auth.py does)."""
    yield from _serve(tmp_path_factory, api_keys=KEY_ENTRIES, rate_limit_per_minute=1_000_000)


@pytest.fixture(
    params=[
        pytest.param(("local", {"Content-Type": "application/json"}), id="local-mode"),
        # Both headers: schemathesis fills in the security schemes' headers itself; these replace them (a
        # request presenting two different keys is refused).
        pytest.param(("keyed", _both_headers(ALL_SCOPES_KEY)), id="all-scopes-key"),
        pytest.param(("keyed", _both_headers(ADMIN_ONLY_KEY)), id="admin-only-key"),
        pytest.param(("keyed", {}), id="no-credentials"),
    ]
)
def target(request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    """(base URL, credential headers): each operation is fuzzed as each of these callers."""
    server, headers = request.param
    return request.getfixturevalue(f"{server}_url"), headers


schema = schemathesis.openapi.from_dict(json.loads(render_openapi()))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case: schemathesis.Case, target: tuple[str, dict[str, str]]) -> None:
    """Every operation, positive and negative data, as each caller: no 5xx, responses (401/403 included) match
    the documented schemas and codes."""
    base_url, headers = target
    response = case.call_and_validate(
        base_url=base_url,
        headers=headers,
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )
    if response.status_code in (401, 403):
        assert response.headers["content-type"] == ["application/problem+json"]
        assert response.headers["www-authenticate"][0].startswith("Bearer")
