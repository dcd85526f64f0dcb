"""Hostile bodies get the client's error, never a 500, and nothing is audited: on POST /v1/recommendations and on
POST /v1/rulesets/impact (the other endpoint that reads a JSON body), with keys holding the scopes they need."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hostile import HOSTILE, IMPACT, PROFILE, RULE_FILES
from litestar.testing import AsyncTestClient

Client = AsyncTestClient  # type: ignore[type-arg]


async def _audited(client: Client, auditor: str) -> int:
    response = await client.get("/v1/decisions", params={"limit": 500}, headers={"X-API-Key": auditor})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def _send(client: Client, path: str, content: bytes, key: str) -> tuple[Any, float]:
    started = time.perf_counter()
    response = await client.post(path, content=content, headers={"content-type": "application/json", "X-API-Key": key})
    return response, time.perf_counter() - started


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_a_hostile_body_gets_its_fixed_answer_fast_and_nothing_is_audited(
    keyed_client: Client, api_keys: dict[str, str], name: str
) -> None:
    profile, candidate, status, code = HOSTILE[name]
    for path, content, key in (
        ("/v1/recommendations", profile, api_keys["decider"]),
        ("/v1/rulesets/impact", candidate, api_keys["operator"]),
    ):
        response, seconds = await _send(keyed_client, path, content, key)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == code, problem
        assert "data" not in json.dumps(problem)
        assert seconds < 2.0, f"{path}: {seconds:.2f} s"  # answered at once (milliseconds; slack for a busy host)
    assert await _audited(keyed_client, api_keys["auditor"]) == 0


async def test_the_413_states_the_limit(keyed_client: Client, api_keys: dict[str, str]) -> None:
    response, _ = await _send(keyed_client, "/v1/recommendations", HOSTILE["2-mb"][0], api_keys["decider"])
    problem = response.json()
    assert problem["limit_bytes"] == 65536
    assert "65536 bytes" in problem["detail"]


async def test_the_same_bodies_made_valid_are_accepted(keyed_client: Client, api_keys: dict[str, str]) -> None:
    """The controls: the bodies the hostile ones were made from."""
    response, _ = await _send(keyed_client, "/v1/recommendations", PROFILE, api_keys["decider"])
    assert response.status_code == 201, response.text
    response, _ = await _send(keyed_client, "/v1/rulesets/impact", IMPACT, api_keys["operator"])
    assert response.status_code == 200, response.text
    assert await _audited(keyed_client, api_keys["auditor"]) == 1


@pytest.mark.parametrize(
    ("files", "errors"),
    [
        (
            {},
            {
                "files": "must have at least 6 entries",
                'files["ruleset.yaml"]': "is required",
                'files["catalog.yaml"]': "is required",
            },
        ),
        (  # a candidate with no tables
            {"ruleset.yaml": RULE_FILES["ruleset.yaml"], "catalog.yaml": RULE_FILES["catalog.yaml"]},
            {"files": "must have at least 6 entries"},
        ),
        (  # enough files, but not the two every ruleset has
            {f"tables/t{i}.yaml": "" for i in range(6)},
            {'files["ruleset.yaml"]': "is required", 'files["catalog.yaml"]': "is required"},
        ),
    ],
    ids=["no-files", "no-tables", "no-manifest"],
)
async def test_an_impact_candidate_without_its_files_is_422(client: Client, files: Any, errors: Any) -> None:
    response = await client.post("/v1/rulesets/impact", json={"files": files})
    assert response.status_code == 422, response.text
    assert {e["key"]: e["message"] for e in response.json()["errors"]} == errors


async def test_an_impact_since_without_a_time_zone_is_422_naming_it(client: Client) -> None:
    response = await client.post("/v1/rulesets/impact", json={"files": RULE_FILES, "since": "2026-01-01T00:00:00"})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["key"] == "since" and "time" in error["message"].lower()
