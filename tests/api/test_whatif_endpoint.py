"""GET /v1/decisions/{id}/what-if and `advisor recommend --what-if`: counterfactuals on demand, never on POST."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

from service.api.auth import API_KEY_HEADER
from service.cli import main
from service.db.repository import DecisionRow
from service.services.audit import AuditReader

ROOT = Path(__file__).resolve().parents[2]
Client = AsyncTestClient  # type: ignore[type-arg]


async def test_post_answer_has_no_what_if(client: Client) -> None:
    answer = await client.post("/v1/recommendations", json=WORKED_EXAMPLE)
    assert answer.status_code == 201, answer.text
    assert "what_if" not in answer.json()
    assert b"what_if" not in answer.content


async def test_what_if_of_a_stored_decision(client: Client) -> None:
    answer = (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).json()
    decision_id = answer["decision_id"]
    response = await client.get(f"/v1/decisions/{decision_id}/what-if")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["decision_id"] == decision_id
    assert report["ruleset"] == answer["ruleset"]
    assert report["instance_type"] == answer["instance"]["instance_type"]
    assert report["usd_per_month_expected"] == answer["cost"]["usd_per_month_expected"]
    changes = [entry["change"] for entry in report["what_if"]]
    assert changes[:4] == ["az_count=2", "az_count=4", "target_utilization=0.6", "target_utilization=0.8"]
    assert any(c.startswith("family=") for c in changes)
    assert any(c.startswith("generation=") for c in changes)
    for entry in report["what_if"]:
        assert set(entry) == {
            "change",
            "instance_type",
            "instances",
            "usd_per_month_expected",
            "delta_usd_per_month",
            "note",
            "hosting_mode",
        }
    again = await client.get(f"/v1/decisions/{decision_id}/what-if")
    assert again.content == response.content


async def test_what_if_of_unknown_or_malformed_decision(client: Client) -> None:
    unknown = await client.get(f"/v1/decisions/{uuid.uuid4()}/what-if")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["code"] == "decision-not-found"
    assert (await client.get("/v1/decisions/nope/what-if")).status_code == 422


async def test_stored_profile_that_no_longer_decodes_is_a_409(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    decision_id = (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).json()["decision_id"]
    read = AuditReader.decision

    async def with_retired_field(self: AuditReader, decision: uuid.UUID) -> DecisionRow | None:
        row = await read(self, decision)
        assert row is not None
        return dataclasses.replace(row, profile=json.dumps(WORKED_EXAMPLE | {"retired_field": 1}))

    monkeypatch.setattr(AuditReader, "decision", with_retired_field)
    response = await client.get(f"/v1/decisions/{decision_id}/what-if")
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "stored-profile-invalid"
    assert "retired_field" in problem["detail"]


async def test_what_if_needs_audit_read(keyed_client: Client, api_keys: dict[str, str]) -> None:
    posted = await keyed_client.post(
        "/v1/recommendations", json=WORKED_EXAMPLE, headers={API_KEY_HEADER: api_keys["decider"]}
    )
    path = f"/v1/decisions/{posted.json()['decision_id']}/what-if"
    assert (await keyed_client.get(path)).status_code == 401
    assert (await keyed_client.get(path, headers={API_KEY_HEADER: api_keys["decider"]})).status_code == 403
    assert (await keyed_client.get(path, headers={API_KEY_HEADER: api_keys["auditor"]})).status_code == 200


def test_cli_what_if_prints_recommendation_and_counterfactuals(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(WORKED_EXAMPLE))
    args = ["recommend", "--what-if", str(profile), "--rules", str(ROOT / "rules")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"recommendation", "what_if", "not_possible"}
    assert out["recommendation"]["capacity"]["base_instances"] == 11
    changes = [entry["change"] for entry in out["what_if"]]
    assert {"az_count=2", "az_count=4", "target_utilization=0.6", "target_utilization=0.8"} <= set(changes)
    assert CliRunner().invoke(main, args).output == result.output
    plain = CliRunner().invoke(main, ["recommend", str(profile), "--rules", str(ROOT / "rules")])
    assert json.loads(plain.output) == out["recommendation"]
