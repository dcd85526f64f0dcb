"""POST /v1/recommendations and the audit trail behind it, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from typing import Any

import pytest
from apiclients import KEY_ENTRIES, MakeClient
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

Client = AsyncTestClient  # type: ignore[type-arg]


async def _post(client: Client, body: Any, **kwargs: Any) -> Any:
    return await client.post("/v1/recommendations", json=body, **kwargs)


async def _count(client: Client) -> int:
    total, cursor = 0, None
    while True:
        params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/decisions", params=params)).json()
        total += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return total


class TestCreate:
    async def test_worked_example_is_answered_and_audited(self, client: Client) -> None:
        response = await _post(client, WORKED_EXAMPLE, headers={"X-Request-ID": "req-42"})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["capacity"]["base_instances"] == 11
        decision_id = uuid.UUID(body["decision_id"])
        assert decision_id.version == 7
        assert response.headers["location"] == f"/v1/decisions/{decision_id}"
        request_id = response.headers["x-request-id"]
        assert request_id != "req-42"  # the service makes its own; the client's is kept apart

        record = await client.get(f"/v1/decisions/{decision_id}")
        assert record.status_code == 200
        stored = record.json()
        assert (stored["request_id"], stored["client_request_id"]) == (request_id, "req-42")
        assert stored["profile"] == WORKED_EXAMPLE
        assert stored["ruleset_sha256"] == body["ruleset"]["sha256"]
        assert stored["caller"].startswith("local@")  # local mode: no API keys configured
        # Byte for byte: the answer is the stored recommendation with the audit identity in front.
        raw = record.content.decode()
        recommendation = raw[raw.index('"recommendation":') + len('"recommendation":') : -1]
        head = json.dumps({"decision_id": str(decision_id), "created_at": body["created_at"]}, separators=(",", ":"))
        assert response.content.decode() == head[:-1] + "," + recommendation[1:]

    async def test_the_answer_declares_its_type_and_exact_length(self, client: Client) -> None:
        response = await _post(client, WORKED_EXAMPLE)
        assert response.status_code == 201
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["content-length"]) == len(response.content)

    async def test_concurrent_posts_each_get_exactly_one_matching_row(self, client: Client) -> None:
        n = 40
        bodies = []
        for i in range(n):
            body = copy.deepcopy(WORKED_EXAMPLE)
            body["traffic"]["peak_rps"] = 100 + i
            bodies.append(body)
        responses = await asyncio.gather(*(_post(client, b) for b in bodies))
        assert [r.status_code for r in responses] == [201] * n
        assert await _count(client) == n
        for body, response in zip(bodies, responses, strict=True):
            answered = response.json()
            record = (await client.get(f"/v1/decisions/{answered['decision_id']}")).json()
            assert record["profile"] == body
            assert {"decision_id": answered["decision_id"], "created_at": answered["created_at"]} | record[
                "recommendation"
            ] == answered

    async def test_pinning_an_unknown_ruleset_version_is_404_and_not_audited(self, client: Client) -> None:
        response = await _post(client, WORKED_EXAMPLE, params={"ruleset_version": "1999.1.0"})
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert await _count(client) == 0

    async def test_pinning_the_active_version_works(self, client: Client) -> None:
        active = (await client.get("/v1/rulesets/active")).json()
        response = await _post(client, WORKED_EXAMPLE, params={"ruleset_version": active["version"]})
        assert response.status_code == 201
        assert response.json()["ruleset"]["sha256"] == active["sha256"]


class TestRejections:
    @pytest.mark.parametrize(
        ("mutate", "key"),
        [
            (lambda b: b["traffic"].update(peak_rps=-1), "traffic.peak_rps"),
            (lambda b: b["traffic"].update(peak_rps="lots"), "traffic.peak_rps"),
            (lambda b: b["traffic"].update(peak_rps=1e308), "traffic.peak_rps"),
            (lambda b: b["sla"].update(availability=1.0), "sla.availability"),
            (lambda b: b["workload"].update(bound="quantum"), "workload.bound"),
            (lambda b: b["workload"].update(treshold=3), "workload.treshold"),
            (lambda b: b.pop("sla"), "sla"),
        ],
    )
    async def test_invalid_fields_are_422_with_their_path(self, client: Client, mutate: Any, key: str) -> None:
        body = copy.deepcopy(WORKED_EXAMPLE)
        mutate(body)
        response = await _post(client, body)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["status"] == 422 and problem["type"].endswith("invalid-request")
        assert [e["key"] for e in problem["errors"]] == [key]  # the full path of the field, and only it
        assert await _count(client) == 0

    async def test_impossible_profile_is_422_with_a_code(self, client: Client) -> None:
        body = copy.deepcopy(WORKED_EXAMPLE)
        body["workload"]["model_memory_gib"] = 4000
        response = await _post(client, body)
        assert response.status_code == 422
        assert response.json()["code"] == "model-does-not-fit"
        assert response.json()["errors"][0]["key"] == "workload.model_memory_gib"

    async def test_malformed_json_is_400(self, client: Client) -> None:
        response = await client.post(
            "/v1/recommendations", content=b'{"workload": ', headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_wrong_content_type_is_415(self, client: Client) -> None:
        response = await client.post(
            "/v1/recommendations", content=json.dumps(WORKED_EXAMPLE), headers={"content-type": "text/plain"}
        )
        assert response.status_code == 415
        assert await _count(client) == 0

    @pytest.mark.parametrize(
        ("content_type", "status"),
        [
            ("application/json", 201),
            ("application/json; charset=utf-8", 201),
            ("Application/JSON", 201),
            ("application/vnd.advisor+json", 415),  # local mode takes exactly application/json (keys: below)
            ("application/jsonx", 415),
            ("text/json", 415),
            ("", 415),
        ],
    )
    async def test_only_json_media_types_are_accepted(self, client: Client, content_type: str, status: int) -> None:
        response = await client.post(
            "/v1/recommendations", content=json.dumps(WORKED_EXAMPLE), headers={"content-type": content_type}
        )
        assert response.status_code == status, response.text
        assert await _count(client) == (1 if status == 201 else 0)

    async def test_a_json_suffix_type_is_accepted_with_keys(
        self, make_client: MakeClient, api_keys: dict[str, str]
    ) -> None:
        async with make_client(api_keys=KEY_ENTRIES) as keyed:
            response = await keyed.post(
                "/v1/recommendations",
                content=json.dumps(WORKED_EXAMPLE),
                headers={"content-type": "application/vnd.advisor+json", "X-API-Key": api_keys["decider"]},
            )
        assert response.status_code == 201, response.text

    async def test_oversized_body_is_413(self, client: Client) -> None:
        body = copy.deepcopy(WORKED_EXAMPLE)
        body["name"] = "x" * 70_000
        response = await _post(client, body)
        assert response.status_code == 413
        assert response.json()["limit_bytes"] == 65536
        assert await _count(client) == 0


class TestReads:
    async def test_malformed_decision_id_is_422_unknown_is_404(self, client: Client) -> None:
        assert (await client.get("/v1/decisions/not-a-uuid")).status_code == 422
        missing = await client.get(f"/v1/decisions/{uuid.uuid4()}")
        assert missing.status_code == 404
        assert missing.json()["code"] == "decision-not-found"

    async def test_list_pages_newest_first_and_filters(self, client: Client) -> None:
        ids = []
        for burst in ["steady", "bursty", "steady", "bursty", "steady"]:
            body = copy.deepcopy(WORKED_EXAMPLE)
            body["traffic"]["burstiness"] = burst
            ids.append((await _post(client, body)).json()["decision_id"])
        first = (await client.get("/v1/decisions", params={"limit": 2})).json()
        assert [i["decision_id"] for i in first["items"]] == ids[::-1][:2]
        second = (await client.get("/v1/decisions", params={"limit": 2, "cursor": first["next_cursor"]})).json()
        assert [i["decision_id"] for i in second["items"]] == ids[::-1][2:4]
        steps = (await client.get("/v1/decisions", params={"scaling_method": "step"})).json()
        assert {i["decision_id"] for i in steps["items"]} == {ids[1], ids[3]}
        assert (await client.get("/v1/decisions", params={"limit": 501})).status_code == 422
        assert (await client.get("/v1/decisions", params={"cursor": "garbage"})).status_code == 422

    async def test_rulesets_are_stored_with_their_files(self, client: Client) -> None:
        listing = (await client.get("/v1/rulesets")).json()["items"]
        assert len(listing) == 1 and listing[0]["active"]
        detail = (await client.get(f"/v1/rulesets/{listing[0]['version']}")).json()
        assert "tables/family.yaml" in detail["files"] and "catalog.yaml" in detail["files"]
        assert (await client.get("/v1/rulesets/0.0.0-missing")).status_code == 404

    async def test_health_and_readiness(self, client: Client) -> None:
        assert (await client.get("/healthz")).json() == {"status": "ok", "checks": {}}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
