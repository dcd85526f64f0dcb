"""Schemathesis with every check (`--checks all`), positive and negative data, against the served API.

The server runs under uvicorn on loopback with one API key holding every scope and no rate limit, so each
generated request is answered by the route itself. Budget: MAX_EXAMPLES generated cases per operation and
generation mode (positive and negative), explicit examples of the document included; about a minute on two cores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from test_openapi import _both_headers, _serve

from service.api.auth import hash_key, new_key
from service.openapi import render_openapi

MAX_EXAMPLES = 100

EVERY_SCOPE_KEY = new_key()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    keys = [{"name": "every-scope", "sha256": hash_key(EVERY_SCOPE_KEY), "scopes": ["decide", "audit:read", "admin"]}]
    yield from _serve(tmp_path_factory, api_keys=keys, rate_limit_per_minute=0)


load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())

schema = schemathesis.openapi.from_dict(json.loads(render_openapi()))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


def test_every_check_is_run() -> None:
    assert {check.__name__ for check in ALL_CHECKS} >= {
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
    }


# Bodies that satisfy the published JSON Schema but that the server refuses with 422 for reasons the schema does not
# state yet: a profile's cross-field rules (model_memory_gib required for llm or gpu/memory bound, mean_rps and
# peak_windows[].rps at most peak_rps, a rate or load tests required) and refusals of the engine (the model fits no
# type); an impact candidate whose files are not valid rule files. Strict: this fails once they pass.
BODY_RULES_NOT_IN_THE_SCHEMA = ("createRecommendation", "rulesetImpact")


def _call(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers=_both_headers(EVERY_SCOPE_KEY), checks=ALL_CHECKS)


@schema.exclude(operation_id=list(BODY_RULES_NOT_IN_THE_SCHEMA)).parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_check_passes(case: schemathesis.Case, base_url: str) -> None:
    """Every operation, positive and negative data, every check: no failure."""
    _call(case, base_url)


@pytest.mark.xfail(reason="cross-field and rule-file rules of the bodies are not in the schema yet", strict=True)
@schema.include(operation_id=list(BODY_RULES_NOT_IN_THE_SCHEMA)).parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_check_passes_on_bodies(case: schemathesis.Case, base_url: str) -> None:
    _call(case, base_url)
