"""Replaying audited decisions: identical under their own ruleset, field-level differences under another."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from candidates import write_candidate
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE
from recorded import record_copy, with_leaf

from service import __version__
from service.db.connection import create_engine
from service.db.repository import AuditRepository
from service.rulebook.loader import load_ruleset
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
Client = AsyncTestClient  # type: ignore[type-arg]


async def _store_candidate(database_url: str, tmp_path: Path) -> str:
    """Store a second ruleset version in which steady load gets 2x max capacity instead of 1.5x."""
    loaded = load_ruleset(write_candidate(tmp_path / "candidate", version="2027.1.0", steady_factor="2.0"))
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with engine.begin() as conn:
            await AuditRepository(conn).save_ruleset(
                loaded.sha256, loaded.version, loaded.description, loaded.files, datetime.now(UTC)
            )
    finally:
        await engine.dispose()
    return loaded.version


async def test_every_audited_decision_replays_identically(client: Client) -> None:
    ids = []
    for burst, rps in [("steady", 150), ("bursty", 90), ("periodic", 40), ("steady", 7)]:
        body = copy.deepcopy(WORKED_EXAMPLE)
        body["traffic"] |= {"burstiness": burst, "peak_rps": rps}
        ids.append((await client.post("/v1/recommendations", json=body)).json()["decision_id"])
    listed = (await client.get("/v1/decisions", params={"limit": 500})).json()["items"]
    assert {i["decision_id"] for i in listed} == set(ids)
    for item in listed:
        replay = await client.post(f"/v1/decisions/{item['decision_id']}/replay")
        assert replay.status_code == 200, replay.text
        result = replay.json()
        original = result["original"]
        assert original["identical"] is True
        assert original["differences"] == []
        assert original["ruleset_sha256"] == item["ruleset_sha256"]
        assert original["cause"] is None
        assert item["engine_version"] == result["engine_version_then"] == result["engine_version_now"] == __version__
        assert result["engine_changed"] is False
        assert (
            result["summary"] == f"Identical under its own ruleset {item['ruleset_version']} with engine {__version__}."
        )


async def test_replay_under_another_version_lists_the_differences(
    client: Client, database_url: str, tmp_path: Path
) -> None:
    decision_id = (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).json()["decision_id"]
    version = await _store_candidate(database_url, tmp_path)
    replay = (await client.post(f"/v1/decisions/{decision_id}/replay", params={"ruleset_version": version})).json()
    assert replay["original"]["identical"] is True
    other = replay["other"]
    assert other["ruleset_version"] == "2027.1.0"
    assert other["identical"] is False
    fields = {d["field"]: (d["before"], d["after"]) for d in other["differences"]}
    assert fields["capacity.max_instances"] == (18, 24)
    assert fields["ruleset.version"] == (load_ruleset(ROOT / "rules").version, "2027.1.0")


async def test_replay_of_unknown_or_malformed_decision(client: Client) -> None:
    assert (await client.post(f"/v1/decisions/{uuid.uuid4()}/replay")).status_code == 404
    assert (await client.post("/v1/decisions/nope/replay")).status_code == 422
    decision_id = (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).json()["decision_id"]
    missing = await client.post(f"/v1/decisions/{decision_id}/replay", params={"ruleset_version": "0.0.0"})
    assert missing.status_code == 404


async def test_replay_tells_an_engine_change_from_a_rule_change(
    client: Client, database_url: str, tmp_path: Path
) -> None:
    """Copies of one decision as other engines recorded it (through the repository): the same answer, or one
    ``capacity.max_instances`` apart, which this engine, under the same ruleset, does not give."""
    decision_id = (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).json()["decision_id"]
    record = (await client.get(f"/v1/decisions/{decision_id}")).json()
    answer = record["recommendation"]
    old_answer = with_leaf(json.dumps(answer), "capacity.max_instances", answer["capacity"]["max_instances"] + 5)
    same = await record_copy(database_url, decision_id, engine_version="0.1.0")
    older = await record_copy(database_url, decision_id, engine_version="0.1.0", recommendation=old_answer)
    unrecorded = await record_copy(database_url, decision_id, engine_version=None, recommendation=old_answer)
    unexplained = await record_copy(database_url, decision_id, engine_version=__version__, recommendation=old_answer)

    async def replay(copy: str, **params: str) -> dict[str, Any]:
        response = await client.post(f"/v1/decisions/{copy}/replay", params=params)
        assert response.status_code == 200, response.text
        return cast(dict[str, Any], response.json())

    result = await replay(same)
    assert (result["engine_version_then"], result["engine_version_now"], result["engine_changed"]) == (
        "0.1.0",
        __version__,
        True,
    )
    assert result["original"]["identical"] is True and result["original"]["cause"] is None

    result = await replay(older)
    original = result["original"]
    assert (original["identical"], original["cause"]) == (False, "engine")
    max_instances = answer["capacity"]["max_instances"]
    assert original["differences"] == [
        {"field": "capacity.max_instances", "before": max_instances + 5, "after": max_instances}
    ]
    assert f"the difference comes from the engine (0.1.0 then, {__version__} now), not the rules" in result["summary"]

    result = await replay(unrecorded)
    assert (result["engine_version_then"], result["engine_changed"], result["original"]["cause"]) == (
        None,
        True,
        "engine",
    )
    assert "not recorded (a release before 0.2.0) then" in result["summary"]

    result = await replay(unexplained)
    assert (result["engine_changed"], result["original"]["cause"]) == (False, "unexplained")
    assert "neither the rules nor the engine explain it" in result["summary"]

    version = await _store_candidate(database_url, tmp_path)
    assert (await replay(same, ruleset_version=version))["other"]["cause"] == "rules"
    result = await replay(older, ruleset_version=version)
    assert result["other"]["cause"] == "engine_and_rules"
    assert "because of the engine and the rules" in result["summary"]
