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
# A body over ADVISOR_MAX_BODY_BYTES is refused for its size (413, documented) before it is decoded: a rejection of
# invalid data like the 4xx schemathesis expects by default.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


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


# The two body operations: the schema states a body's shape; beyond it the server checks what a profile means (mean
# above peak, a model no instance type holds: the engine's refusal codes) and whether a candidate's files are rule
# files (ruleset-invalid), and answers those with the 422s both operations document. A schema-valid body may get them;
# a refusal of its shape is still a failure. Every other check runs as for the other operations.
BODY_OPERATIONS = ("createRecommendation", "rulesetImpact")
SHAPE_REFUSALS = {"invalid-request", "malformed-json", "duplicate-key", "empty-body", "body-nested-too-deeply"}
_BODY_CHECKS = [check for check in ALL_CHECKS if check.__name__ != "positive_data_acceptance"]


def _call(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers=_both_headers(EVERY_SCOPE_KEY), checks=ALL_CHECKS)


@schema.exclude(operation_id=list(BODY_OPERATIONS)).parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_check_passes(case: schemathesis.Case, base_url: str) -> None:
    """Every operation, positive and negative data, every check: no failure."""
    _call(case, base_url)


@schema.include(operation_id=list(BODY_OPERATIONS)).parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_check_passes_on_bodies(case: schemathesis.Case, base_url: str) -> None:
    """Every check but positive acceptance as built in, which this test states for bodies: a schema-valid body is
    accepted, or refused on its merits (a semantic 422), never for its shape."""
    response = case.call_and_validate(base_url=base_url, headers=_both_headers(EVERY_SCOPE_KEY), checks=_BODY_CHECKS)
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return
    if response.status_code == 422:
        code = response.json().get("code")
        assert code not in SHAPE_REFUSALS, f"a schema-valid body refused for its shape: {response.text}"
    else:
        assert response.status_code < 300 or response.status_code in (401, 403, 404, 409), response.text
