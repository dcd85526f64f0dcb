"""Replaying audited decisions: identical under their own ruleset, field-level differences under another."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from pathlib import Path

from candidates import write_candidate
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

from service.db.engine import create_engine
from service.db.repository import AuditRepository
from service.rulebook.loader import load_ruleset
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
Client = AsyncTestClient  # type: ignore[type-arg]


async def _store_candidate(database_url: str, tmp_path: Path) -> str:
    """Store a second ruleset version in which steady load gets 2x max capacity instead of 1.5x."""
    loaded = load_ruleset(write_candidate(tmp_path / "candidate", version="2026.12.0", steady_factor="2.0"))
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
        original = replay.json()["original"]
        assert original["identical"] is True
        assert original["differences"] == []
        assert original["ruleset_sha256"] == item["ruleset_sha256"]


async def test_replay_under_another_version_lists_the_differences(
    client: Client, database_url: str, tmp_path: Path
) -> None:
    decision_id = (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).json()["decision_id"]
    version = await _store_candidate(database_url, tmp_path)
    replay = (await client.post(f"/v1/decisions/{decision_id}/replay", params={"ruleset_version": version})).json()
    assert replay["original"]["identical"] is True
    other = replay["other"]
    assert other["ruleset_version"] == "2026.12.0"
    assert other["identical"] is False
    fields = {d["field"]: (d["before"], d["after"]) for d in other["differences"]}
    assert fields["capacity.max_instances"] == (18, 24)
    assert fields["ruleset.version"] == ("2026.11.0", "2026.12.0")


async def test_replay_of_unknown_or_malformed_decision(client: Client) -> None:
    assert (await client.post(f"/v1/decisions/{uuid.uuid4()}/replay")).status_code == 404
    assert (await client.post("/v1/decisions/nope/replay")).status_code == 422
    decision_id = (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).json()["decision_id"]
    missing = await client.post(f"/v1/decisions/{decision_id}/replay", params={"ruleset_version": "0.0.0"})
    assert missing.status_code == 404
