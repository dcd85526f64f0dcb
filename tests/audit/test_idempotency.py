"""Idempotency-Key on POST /v1/recommendations, and the writer underneath, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from auditutil import MakeClient, MakeWriter, count_decisions, decision
from profiles import WORKED_EXAMPLE
from sqlalchemy.ext.asyncio import AsyncEngine
from storedrows import decision_count, idempotency_key_count

from service.db import AuditRepository
from service.services.audit import IdempotencyConflict, IdempotencyKey

Client = httpx.AsyncClient


async def post(client: Client, body: Any = WORKED_EXAMPLE, *, key: str | bytes | None = None, **kwargs: Any) -> Any:
    headers = {} if key is None else {"Idempotency-Key": key}
    return await client.post("/v1/recommendations", json=body, headers=headers, **kwargs)


async def total(client: Client) -> int:
    return len((await client.get("/v1/decisions", params={"limit": 500})).json()["items"])


def other_body() -> dict[str, Any]:
    body = copy.deepcopy(WORKED_EXAMPLE)
    body["traffic"]["peak_rps"] = 151
    return body


@pytest.fixture
async def client(make_client: MakeClient) -> Any:
    async with make_client() as test_client:
        yield test_client


# --- through the API -------------------------------------------------------------------------------------------


async def test_a_retry_answers_the_original_decision_byte_for_byte(client: Client) -> None:
    first = await post(client, key="order-42")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await post(client, key="order-42")
    assert again.status_code == 201
    assert again.content == first.content  # the same bytes, rebuilt from the stored recommendation
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await total(client) == 1


async def test_a_retry_after_a_failed_first_attempt_decides(client: Client) -> None:
    """Nothing is remembered for a request that was refused: the key stays free."""
    bad = copy.deepcopy(WORKED_EXAMPLE)
    bad["workload"]["model_memory_gib"] = 4000  # no instance fits: 422, nothing stored
    assert (await post(client, bad, key="k")).status_code == 422
    assert (await post(client, key="k")).status_code == 201
    assert await total(client) == 1


async def test_the_same_key_with_another_body_is_409(client: Client) -> None:
    first = await post(client, key="k-1")
    assert first.status_code == 201
    reused = await post(client, other_body(), key="k-1")
    assert reused.status_code == 409, reused.text
    assert reused.headers["content-type"].startswith("application/problem+json")
    assert reused.json()["code"] == "idempotency-key-reused"
    assert await total(client) == 1
    # A different key is a different request.
    assert (await post(client, other_body(), key="k-2")).status_code == 201
    assert await total(client) == 2


async def test_the_same_key_with_another_ruleset_version_is_409(client: Client) -> None:
    version = (await client.get("/v1/rulesets/active")).json()["version"]
    assert (await post(client, key="k")).status_code == 201
    assert (await post(client, key="k", params={"ruleset_version": version})).status_code == 409


async def test_the_body_is_compared_byte_for_byte(client: Client) -> None:
    """Same JSON value, different bytes: a different request (the key names exactly what was sent)."""
    raw = json.dumps(WORKED_EXAMPLE).encode()
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    assert (await client.post("/v1/recommendations", content=raw, headers=headers)).status_code == 201
    spaced = json.dumps(WORKED_EXAMPLE, indent=1).encode()
    assert (await client.post("/v1/recommendations", content=spaced, headers=headers)).status_code == 409


async def test_concurrent_duplicates_store_one_decision(client: Client) -> None:
    responses = await asyncio.gather(*(post(client, key="burst") for _ in range(20)))
    assert [r.status_code for r in responses] == [201] * 20
    assert len({r.content for r in responses}) == 1
    assert sum(1 for r in responses if "idempotent-replayed" not in r.headers) == 1
    assert await total(client) == 1


async def test_concurrent_duplicates_with_different_bodies_get_one_decision_and_409s(client: Client) -> None:
    bodies = [WORKED_EXAMPLE if i % 2 else other_body() for i in range(10)]
    responses = await asyncio.gather(*(post(client, b, key="race") for b in bodies))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 5 + [409] * 5
    assert len({r.content for r in responses if r.status_code == 201}) == 1
    assert await total(client) == 1


async def test_an_expired_key_makes_a_new_decision(make_client: MakeClient) -> None:
    async with make_client(idempotency_ttl_s=1) as client:
        first = await post(client, key="short-lived")
        assert (await post(client, key="short-lived")).content == first.content
        await asyncio.sleep(1.1)
        second = await post(client, key="short-lived")
        assert second.status_code == 201
        assert second.json()["decision_id"] != first.json()["decision_id"]
        assert "idempotent-replayed" not in second.headers
        # The key now stands for the new decision.
        assert (await post(client, key="short-lived")).content == second.content
        assert await total(client) == 2


@pytest.mark.parametrize(
    "key",
    [
        "",
        "x" * 256,
        " leading-space",
        "trailing-space ",
        "tab\there",
        "é".encode("latin-1"),
        b"\x7f",
    ],
    ids=["empty", "too-long", "leading-space", "trailing-space", "control", "latin-1", "del"],
)
async def test_a_malformed_key_is_422(client: Client, key: str | bytes) -> None:
    response = await post(client, key=key)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await total(client) == 0


@pytest.mark.parametrize("key", ["a", "x" * 255, "order 42/retry:1", "~!@#$%^&*()_+{}|:<>?"])
async def test_well_formed_keys_are_accepted(client: Client, key: str) -> None:
    assert (await post(client, key=key)).status_code == 201
    assert (await post(client, key=key)).headers["idempotent-replayed"] == "true"


async def test_without_a_key_every_post_decides(client: Client) -> None:
    assert (await post(client)).content != (await post(client)).content
    assert await total(client) == 2


# --- the writer ------------------------------------------------------------------------------------------------


def key(name: str = "k", *, caller: str = "team-a", request: str = "1" * 64) -> IdempotencyKey:
    return IdempotencyKey(caller=caller, key=name, request_sha256=request)


async def test_duplicates_in_one_batch_share_the_first_decision(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    writer = make_writer(max_rows=100, max_wait_ms=200)
    rows = [decision(i) for i in range(4)]
    keys = [key(), key(), key(request="2" * 64), key("other")]
    results = await asyncio.gather(
        *(writer.write(r, idempotency=k) for r, k in zip(rows, keys, strict=True)), return_exceptions=True
    )
    assert writer.stats.batches == 1
    assert results[0] == rows[0] and results[1] == rows[0]
    assert isinstance(results[2], IdempotencyConflict)
    assert results[3] == rows[3]
    assert await count_decisions(engine) == 2
    assert writer.stats.rows == 2 and writer.stats.replays == 1


async def test_keys_are_scoped_by_caller(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    writer = make_writer(max_wait_ms=0)
    a, b = decision(1), decision(2)
    assert await writer.write(a, idempotency=key(caller="team-a")) == a
    assert await writer.write(b, idempotency=key(caller="team-b")) == b
    assert await writer.write(decision(3), idempotency=key(caller="team-a")) == a
    assert await count_decisions(engine) == 2


async def test_recall_finds_live_keys_only(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    writer = make_writer(max_wait_ms=0, idempotency_ttl_s=60, clock=lambda: now[0])
    row = decision()
    await writer.write(row, idempotency=key())
    assert await writer.recall(key()) == row
    assert await writer.recall(key("unknown")) is None
    with pytest.raises(IdempotencyConflict):
        await writer.recall(key(request="2" * 64))
    now[0] += timedelta(seconds=61)
    assert await writer.recall(key()) is None


async def test_an_expired_key_not_yet_purged_is_taken_over(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    writer = make_writer(max_wait_ms=0, idempotency_ttl_s=60, clock=lambda: now[0])
    first, second = decision(1), decision(2)
    assert await writer.write(first, idempotency=key()) == first
    now[0] += timedelta(seconds=60)  # expires_at is exclusive
    assert await writer.write(second, idempotency=key(request="2" * 64)) == second
    assert await writer.write(decision(3), idempotency=key(request="2" * 64)) == second
    async with engine.connect() as conn:
        assert await idempotency_key_count(conn) == 1
        assert await decision_count(conn) == 2


async def test_expired_keys_are_purged_in_bounded_batches(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    writer = make_writer(max_rows=500, max_wait_ms=50, idempotency_ttl_s=60, purge_batch=7, clock=lambda: now[0])
    await asyncio.gather(*(writer.write(decision(i), idempotency=key(f"k{i}")) for i in range(30)))
    now[0] += timedelta(seconds=30)
    await asyncio.gather(*(writer.write(decision(i), idempotency=key(f"late{i}")) for i in range(5)))
    assert await writer.purge_expired_keys() == 0
    now[0] += timedelta(seconds=31)  # the first 30 expired, the later 5 not
    deletes: list[int] = []
    original = AuditRepository.purge_idempotency_keys

    async def spy(self: AuditRepository, *, expired_at: datetime, limit: int) -> int:
        deleted = await original(self, expired_at=expired_at, limit=limit)
        deletes.append(deleted)
        return deleted

    AuditRepository.purge_idempotency_keys = spy  # type: ignore[method-assign]
    try:
        assert await writer.purge_expired_keys() == 30
    finally:
        AuditRepository.purge_idempotency_keys = original  # type: ignore[method-assign]
    assert deletes == [7, 7, 7, 7, 2]
    async with engine.connect() as conn:
        assert await idempotency_key_count(conn) == 5
        assert await decision_count(conn) == 35  # decisions are never purged


async def test_the_purger_runs_by_itself(engine: AsyncEngine, make_writer: MakeWriter) -> None:
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    writer = make_writer(max_wait_ms=0, idempotency_ttl_s=1, purge_interval_s=0.05, clock=lambda: now[0])
    await writer.start()
    await writer.write(decision(), idempotency=key())
    now[0] += timedelta(seconds=2)
    for _ in range(100):
        await asyncio.sleep(0.02)
        if writer.stats.purged_keys:
            break
    assert writer.stats.purged_keys == 1


async def test_a_unique_key_conflict_is_settled_by_re_reading(
    engine: AsyncEngine, make_writer: MakeWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a key be stored behind the head lock's back (a stale read here), the unique constraint refuses the
    second row, and the batch is retried once: the re-read finds the key and answers the original decision."""
    writer = make_writer(max_wait_ms=0)
    original = decision(1)
    await writer.write(original, idempotency=key())
    real_find = AuditRepository.find_idempotency_keys
    calls: list[int] = []

    async def stale_once(self: AuditRepository, keys: Any) -> Any:
        calls.append(1)
        return {} if len(calls) == 1 else await real_find(self, keys)

    monkeypatch.setattr(AuditRepository, "find_idempotency_keys", stale_once)
    assert await writer.write(decision(2), idempotency=key()) == original
    assert len(calls) == 2
    assert await count_decisions(engine) == 1
