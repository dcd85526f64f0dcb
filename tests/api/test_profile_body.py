"""POST /v1/recommendations decodes its body itself (service/api/profile_body.py): every answer below is the one
Litestar gave when the profile was the handler's ``data`` parameter (compared case by case when the change was made).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

from service.api.profile_body import _read_body

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


# --- reading the bytes: what Litestar's Request.body() did, checked on raw ASGI messages ---------------------------

_LIMIT = 100


@post("/echo", status_code=200, request_max_body_size=_LIMIT)
async def _echo(request: Request[Any, Any, Any]) -> dict[str, Any]:
    body = await _read_body(request)
    return {"body": body.decode(), "again": (await request.body()).decode()}


_ECHO_APP = Litestar(route_handlers=[_echo], debug=False)


async def _call(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]) -> tuple[int, Any]:
    """POST /echo on the raw ASGI app, fed ``messages``; the status and the decoded JSON answer."""
    incoming = list(messages)
    sent: list[Any] = []

    async def receive() -> Any:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope: Any = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await _ECHO_APP(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def _chunks(*parts: bytes) -> list[dict[str, Any]]:
    return [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]


async def test_chunks_are_joined_and_left_for_request_body() -> None:
    status, answer = await _call(_chunks(b'{"a":', b"", b" 1}"), [])
    assert (status, answer) == (200, {"body": '{"a": 1}', "again": '{"a": 1}'})


async def test_a_body_at_the_limit_is_read() -> None:
    status, answer = await _call(_chunks(b"x" * 60, b"y" * 40), [(b"content-length", b"100")])
    assert (status, answer["body"]) == (200, "x" * 60 + "y" * 40)


@pytest.mark.parametrize(
    ("messages", "headers"),
    [
        (_chunks(b"x"), [(b"content-length", b"101")]),  # announced: refused before anything is read
        (_chunks(b"x" * 60, b"y" * 41), []),  # no Content-Length (chunked): counted as it arrives
        (_chunks(b"x" * 60, b"y" * 41), [(b"content-length", b"10")]),  # more than announced: counted too
    ],
    ids=["announced", "streamed", "longer-than-announced"],
)
async def test_over_the_limit_is_413(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]) -> None:
    status, problem = await _call(messages, headers)
    assert status == 413, problem


async def test_an_unreadable_content_length_is_400_in_litestars_words() -> None:
    status, problem = await _call(_chunks(b"{}"), [(b"content-length", b"ten")])
    assert status == 400
    assert problem["detail"] == "Invalid content-length: 'ten'"


async def test_a_client_that_disconnects_midway_is_a_500_as_in_litestar() -> None:
    status, _ = await _call([*_chunks(b"x", b"y")[:1], {"type": "http.disconnect"}], [])
    assert status == 500
