"""POST /v1/recommendations decodes its body itself (service/api/profile_body.py): every answer below is the one
Litestar gave when the profile was the handler's ``data`` parameter (compared case by case when the change was made).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

Client = AsyncTestClient  # type: ignore[type-arg]
JSON = {"content-type": "application/json"}


def _body(change: Callable[[dict[str, Any]], object]) -> bytes:
    profile = copy.deepcopy(WORKED_EXAMPLE)
    change(profile)
    return json.dumps(profile).encode()


def _worked_with(old: str, new: str) -> bytes:
    text = json.dumps(WORKED_EXAMPLE)
    assert old in text
    return text.replace(old, new).encode()


@pytest.mark.parametrize(
    ("content", "key", "message"),
    [
        (b"", "data", "'data'"),  # Litestar's words for a missing body
        (b"null", "data", "Expected `object`, got `null`"),
        (b"[]", "data", "Expected `object`, got `array`"),
        (_body(lambda p: p.update(extra=1)), "data", "Object contains unknown field `extra`"),
        (_body(lambda p: p.pop("sla")), "data", "Object missing required field `sla`"),
        (_body(lambda p: p["sla"].update(foo=1)), "sla", "Object contains unknown field `foo`"),
        (_body(lambda p: p["traffic"].update(peak_rps=-1)), "traffic.peak_rps", "Expected `float` >= 0.001"),
        (_body(lambda p: p["workload"].update(bound="tpu")), "workload.bound", "Invalid enum value 'tpu'"),
        (_body(lambda p: p["sla"].update(availability=True)), "sla.availability", "Expected `float`, got `bool`"),
        (
            _body(lambda p: p["traffic"].update(burstiness="periodic", peak_windows=[{"cron": 5, "rps": 10}])),
            "traffic.peak_windows[0].cron",
            "Expected `str`, got `int`",
        ),
    ],
    ids=["empty", "null", "array", "unknown", "missing", "nested-unknown", "range", "enum", "bool", "list-item"],
)
async def test_a_profile_that_does_not_fit_is_422_naming_the_field(
    client: Client, content: bytes, key: str, message: str
) -> None:
    response = await client.post("/v1/recommendations", content=content, headers=JSON)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["code"], problem["detail"]) == ("invalid-request", message)
    assert problem["errors"] == [{"key": key, "message": message, "source": "body"}]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b'{"workload": ', "Input data was truncated"),
        (json.dumps(WORKED_EXAMPLE).encode() + b" x", "JSON is malformed: trailing characters (byte 264)"),
        (b'{"name": "\xff"}', "Invalid UTF-8 encoded string"),
        (_worked_with('"peak_rps": 150', '"peak_rps": 1e400'), "Number out of range - at `$[...][...]`"),
    ],
    ids=["truncated", "trailing", "utf-8", "out-of-range"],
)
async def test_a_body_that_is_not_json_is_400(client: Client, content: bytes, detail: str) -> None:
    response = await client.post("/v1/recommendations", content=content, headers=JSON)
    assert response.status_code == 400, response.text
    assert (response.json()["code"], response.json()["detail"]) == ("http-400", detail)


@pytest.mark.parametrize(
    "content",
    [
        _body(lambda p: p["traffic"].update(peak_rps="150")),  # strings that are numbers: converted, as before
        _body(lambda p: p.update(az_count=2.0)),
        _worked_with('"peak_rps": 150', '"peak_rps": -1, "peak_rps": 150'),  # a repeated key: the last one counts
    ],
    ids=["numeric-string", "integral-float", "repeated-key"],
)
async def test_lenient_inputs_litestar_accepted_are_still_accepted(client: Client, content: bytes) -> None:
    response = await client.post("/v1/recommendations", content=content, headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json()["capacity"]["base_instances"] == 11  # the worked example's answer: the value was read


async def test_the_stored_profile_is_the_body_as_received(client: Client) -> None:
    content = (
        b'{ "workload" : {"bound":"cpu","model_kind":"classic_ml","model_memory_gib":2},\n'
        + json.dumps({k: v for k, v in WORKED_EXAMPLE.items() if k != "workload"}).encode()[1:]
    )
    created = await client.post("/v1/recommendations", content=content, headers=JSON)
    assert created.status_code == 201, created.text
    stored = await client.get(f"/v1/decisions/{created.json()['decision_id']}")
    assert stored.json()["profile"] == json.loads(content)
