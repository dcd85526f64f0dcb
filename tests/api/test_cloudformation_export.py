"""GET /v1/decisions/{id}/cloudformation: the stored answer as a template, or why it cannot be one."""

from __future__ import annotations

import copy
import json

from cfntemplates import check_against_answer, lint_errors, parsed
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE
from recorded import record_copy

from service import __version__

Client = AsyncTestClient  # type: ignore[type-arg]


async def test_a_decision_exports_from_its_stored_answer(client: Client) -> None:
    posted = (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).json()
    decision_id = posted["decision_id"]
    response = await client.get(f"/v1/decisions/{decision_id}/cloudformation")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/yaml")
    assert lint_errors(response.text) == []
    template = parsed(response.text)
    stored = (await client.get(f"/v1/decisions/{decision_id}")).json()
    check_against_answer(template, stored["recommendation"])
    advisor = template["Metadata"]["Advisor"]
    assert advisor["DecisionId"] == decision_id
    assert advisor["RulesetVersion"] == stored["ruleset_version"]
    assert advisor["EngineVersion"] == __version__


async def test_batch_transform_returns_the_transform_job_request(client: Client) -> None:
    body = copy.deepcopy(WORKED_EXAMPLE)
    body["sla"] |= {"delivery": "batch", "p99_latency_ms": 3_600_000}
    posted = (await client.post("/v1/recommendations", json=body)).json()
    response = await client.get(f"/v1/decisions/{posted['decision_id']}/cloudformation")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/yaml")
    exported = parsed(response.text)
    assert "no resource" in exported["Note"]
    stored = (await client.get(f"/v1/decisions/{posted['decision_id']}")).json()["recommendation"]
    assert stored["hosting"]["mode"] == "batch_transform"
    assert exported["CreateTransformJob"] == stored["hosting"]["aws"]["create_transform_job"]


async def test_unknown_or_unexportable_decisions_are_problems(client: Client, database_url: str) -> None:
    missing = await client.get("/v1/decisions/0190a1b2-0000-7000-8000-000000000000/cloudformation")
    assert missing.status_code == 404 and missing.json()["type"].endswith("decision-not-found")
    posted = (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).json()
    stored = (await client.get(f"/v1/decisions/{posted['decision_id']}")).json()
    old = {k: v for k, v in stored["recommendation"].items() if k != "hosting"}
    copy_id = await record_copy(
        database_url, posted["decision_id"], engine_version="0.1.0", recommendation=json.dumps(old)
    )
    refused = await client.get(f"/v1/decisions/{copy_id}/cloudformation")
    assert refused.status_code == 409
    assert "no hosting.aws payloads" in refused.json()["detail"]
