"""Request ids (security review, finding 8): the audit row's ``request_id`` is always the service's own, and a
client's ``X-Request-ID`` is kept apart as ``client_request_id``."""

from __future__ import annotations

import re
from typing import Any

from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

Client = AsyncTestClient  # type: ignore[type-arg]
SERVICE_ID = re.compile(r"^[0-9a-f]{32}$")


async def _decide(client: Client, headers: dict[str, str]) -> tuple[Any, dict[str, Any]]:
    response = await client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers=headers)
    assert response.status_code == 201, response.text
    record = await client.get(f"/v1/decisions/{response.json()['decision_id']}")
    assert record.status_code == 200, record.text
    return response, record.json()


async def test_two_requests_with_one_client_id_get_distinct_service_ids(client: Client) -> None:
    first, first_record = await _decide(client, {"X-Request-ID": "shared-1"})
    second, second_record = await _decide(client, {"X-Request-ID": "shared-1"})

    service_ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(SERVICE_ID.match(i) for i in service_ids), service_ids
    assert service_ids[0] != service_ids[1]
    assert [first_record["request_id"], second_record["request_id"]] == service_ids
    assert [first_record["client_request_id"], second_record["client_request_id"]] == ["shared-1", "shared-1"]


async def test_without_a_client_id_or_with_a_malformed_one_none_is_kept(client: Client) -> None:
    _, plain = await _decide(client, {})
    _, malformed = await _decide(client, {"X-Request-ID": "two words"})
    for record in (plain, malformed):
        assert SERVICE_ID.match(record["request_id"])
        assert record["client_request_id"] is None
