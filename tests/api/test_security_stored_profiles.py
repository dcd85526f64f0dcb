"""Finding 1 of the security review: a stored profile never breaks replay, what-if or impact.

Before: a body with a repeated key whose first value was invalid was answered (the last value wins) and stored as
received; replay and impact decoded it with a stricter typed decoder and answered 500, for good (rows are
append-only). Now every path decodes a stored profile as the decide path does, and a row that cannot be decoded at
all (stored under another contract) is a 409 for replay and what-if and is counted, not fatal, in impact.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE
from recorded import record_copy

from service.rulebook.loader import load_ruleset

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
Client = AsyncTestClient  # type: ignore[type-arg]

# The review's poisoned body: "sla" first as a string holding NUL, then the real object (last wins on decide).
POISONED = '{"sla":"\\u0000",' + json.dumps(WORKED_EXAMPLE)[1:]


async def _decide(client: Client, body: dict[str, object]) -> str:
    response = await client.post("/v1/recommendations", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["decision_id"])


async def test_a_profile_stored_with_a_repeated_key_replays_and_counts_in_impact(
    client: Client, database_url: str
) -> None:
    answered = await _decide(client, WORKED_EXAMPLE)
    # Stored the old way: the service no longer accepts the body (400 duplicate-key), so write the row directly.
    poisoned = await record_copy(database_url, answered, engine_version=None, profile=POISONED)
    refused = await client.post("/v1/recommendations", content=POISONED, headers={"content-type": "application/json"})
    assert (refused.status_code, refused.json()["code"]) == (400, "duplicate-key")

    replay = await client.post(f"/v1/decisions/{poisoned}/replay")
    assert replay.status_code == 200, replay.text
    assert replay.json()["original"]["identical"] is True
    assert (await client.get(f"/v1/decisions/{poisoned}/what-if")).status_code == 200

    files = dict(load_ruleset(RULES_DIR).files)
    impact = await client.post("/v1/rulesets/impact", json={"files": files})
    assert impact.status_code == 200, impact.text
    assert (impact.json()["decisions"], impact.json()["undecodable"]) == (2, 0)


async def test_an_undecodable_stored_profile_is_a_409_for_replay_and_counted_by_impact(
    client: Client, database_url: str
) -> None:
    answered = await _decide(client, WORKED_EXAMPLE)
    body = copy.deepcopy(WORKED_EXAMPLE)
    body["traffic"]["peak_rps"] = 90
    await _decide(client, body)
    broken = await record_copy(
        database_url, answered, engine_version=None, profile='{"name":"x","workload":"not an object"}'
    )

    replay = await client.post(f"/v1/decisions/{broken}/replay")
    assert replay.status_code == 409, replay.text
    assert replay.json()["code"] == "stored-profile-invalid"
    assert broken in replay.json()["detail"]
    what_if = await client.get(f"/v1/decisions/{broken}/what-if")
    assert (what_if.status_code, what_if.json()["code"]) == (409, "stored-profile-invalid")

    files = dict(load_ruleset(RULES_DIR).files)
    impact = await client.post("/v1/rulesets/impact", json={"files": files})
    assert impact.status_code == 200, impact.text
    report = impact.json()
    assert (report["decisions"], report["undecodable"], report["unchanged"]) == (3, 1, 2)
    assert [r["decision_id"] for r in report["undecodable_sample"]] == [broken]
    assert "$.workload" in report["undecodable_sample"][0]["reason"]


async def test_an_integral_float_the_decide_path_accepted_replays(client: Client, database_url: str) -> None:
    """The decide path takes 2.0 as the integer 2 (as the published JSON Schema does); replay must too."""
    body = copy.deepcopy(WORKED_EXAMPLE)
    body["workload"]["pipeline_steps"] = 2
    answered = await _decide(client, body)
    as_sent = json.dumps(body).replace('"pipeline_steps": 2', '"pipeline_steps": 2.0')
    assert '"pipeline_steps": 2.0' in as_sent
    stored = await record_copy(database_url, answered, engine_version=None, profile=as_sent)
    replay = await client.post(f"/v1/decisions/{stored}/replay")
    assert replay.status_code == 200, replay.text
    assert replay.json()["original"]["identical"] is True


async def test_a_stored_profile_nested_past_the_stack_is_refused_not_a_500(client: Client, database_url: str) -> None:
    """The second reader's finding: only the decide path refuses depth, so a row written behind the service's back
    (by whoever holds its database role) raised RecursionError in replay, what-if, impact and the report page."""
    answered = await _decide(client, WORKED_EXAMPLE)
    deep = '{"name":"x","workload":' + "[" * 20_000 + "]" * 20_000 + "}"
    stored = await record_copy(database_url, answered, engine_version=None, profile=deep)
    replay = await client.post(f"/v1/decisions/{stored}/replay")
    assert (replay.status_code, replay.json()["code"]) == (409, "stored-profile-invalid")
    assert (await client.get(f"/v1/decisions/{stored}/what-if")).status_code == 409
    assert (await client.get(f"/v1/decisions/{stored}")).status_code < 500
    assert (await client.get(f"/decisions/{stored}")).status_code == 409
    impact = await client.post("/v1/rulesets/impact", json={"files": dict(load_ruleset(RULES_DIR).files)})
    assert impact.status_code == 200, impact.text
    assert (impact.json()["decisions"], impact.json()["undecodable"]) == (2, 1)
