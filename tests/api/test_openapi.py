"""The committed OpenAPI document matches the code, and the running API conforms to it."""

from __future__ import annotations

import asyncio
import json
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under uvicorn on loopback, on a fresh SQLite database."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('schemathesis') / 'advisor.db'}"
    asyncio.run(upgrade(url))
    port = _free_port()
    app = create_app(Settings(database_url=url, rules_dir=ROOT / "rules"))
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


schema = schemathesis.openapi.from_dict(json.loads(render_openapi()))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case: schemathesis.Case, live_url: str) -> None:
    """Every operation, positive and negative data: no 5xx, responses match the documented schemas and codes."""
    case.call_and_validate(
        base_url=live_url, checks=[not_a_server_error, response_schema_conformance, status_code_conformance]
    )
