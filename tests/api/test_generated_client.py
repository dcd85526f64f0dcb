"""The committed OpenAPI document generates a typed Python client (openapi-python-client) without a warning, and the
worked example goes through that client against the served API: recommend, read the decision back, list."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from profiles import WORKED_EXAMPLE
from test_openapi import _serve

from service.api.auth import hash_key, new_key

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "advisor_generated_client"
KEY = new_key()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ModuleType]]:
    """(generator output, the generated package), from openapi/openapi.json into a temporary directory."""
    out = tmp_path_factory.mktemp("client")
    config = out / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run: nothing outside the generator itself
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(ROOT / "openapi" / "openapi.json"),
            "--output-path",
            str(out / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(out))
    try:
        yield result.stdout + result.stderr, importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    keys = [{"name": "client", "sha256": hash_key(KEY), "scopes": ["decide", "audit:read", "admin"]}]
    yield from _serve(tmp_path_factory, api_keys=keys, rate_limit_per_minute=0)


def test_every_operation_is_generated_without_a_warning(generated: tuple[str, ModuleType]) -> None:
    output, package = generated
    assert "warning" not in output.lower() and "cannot parse" not in output.lower(), output
    api = Path(package.__file__ or "").parent / "api"
    operations = {path.stem for path in api.glob("*/*.py") if path.stem != "__init__"}
    assert operations == {
        "create_recommendation",
        "get_decision",
        "get_decision_what_if",
        "get_decision_cloud_formation",
        "list_decisions",
        "list_audit_checkpoints",
        "replay_decision",
        "get_active_ruleset",
        "get_ruleset",
        "list_activations",
        "list_rulesets",
        "reload_ruleset",
        "ruleset_impact",
    }


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_worked_example_through_the_generated_client(generated: tuple[str, ModuleType], base_url: str) -> None:
    _, package = generated
    models = _module("models")
    with package.AuthenticatedClient(base_url=base_url, token=KEY, raise_on_unexpected_status=True) as client:
        body = models.WorkloadProfile.from_dict(WORKED_EXAMPLE)
        created = _module("api.recommendations.create_recommendation").sync_detailed(client=client, body=body)
        assert created.status_code == 201, created.content
        answer = created.parsed
        assert isinstance(answer, models.RecommendationResponse)
        assert answer.capacity.base_instances == 11
        assert answer.instance.family == models.InstanceChoiceFamily.C  # cpu-bound classic ML

        record = _module("api.audit.get_decision").sync(answer.decision_id, client=client)
        assert isinstance(record, models.DecisionRecord)
        assert record.decision_id == answer.decision_id
        assert record.caller == "key:client"
        assert isinstance(record.recommendation, models.Recommendation)
        assert record.recommendation.capacity.base_instances == 11
        assert record.profile.traffic.peak_rps == 150

        page = _module("api.audit.list_decisions").sync(client=client, limit=10)
        assert isinstance(page, models.DecisionPage)
        assert [item.decision_id for item in page.items] == [answer.decision_id]
        assert page.items[0].instances == answer.capacity.instances
