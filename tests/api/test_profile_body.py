"""POST /v1/recommendations decodes its body itself (service/api/profile_body.py): every answer below is the one
Litestar gave when the profile was the handler's ``data`` parameter (compared case by case when the change was made).
"""

from __future__ import annotations

import asyncio
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


# --- reading the bytes: every case answered as by Litestar's Request.body(), checked on raw ASGI messages ---------

_LIMIT = 100
_DISCONNECT = {"type": "http.disconnect"}


async def _read_twice(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The body as ``_read_body`` reads it, and as ``request.body()`` finds it afterwards."""
    body = await _read_body(request)
    return {"body": body.decode(), "again": (await request.body()).decode()}


async def _read_with_litestar(request: Request[Any, Any, Any]) -> dict[str, Any]:
    body = await request.body()
    return {"body": body.decode(), "again": (await request.body()).decode()}


async def _read_after_litestar(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Litestar read the body first: ``_read_body`` must find it rather than wait for more messages."""
    await request.body()
    return await _read_twice(request)


async def _read_after_stream(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The stream consumed without keeping the body: a second read is a 500, as in Litestar."""
    async for _ in request.stream():
        pass
    return await _read_twice(request)


_APP = Litestar(
    route_handlers=[
        post("/ours", status_code=200, request_max_body_size=_LIMIT)(_read_twice),
        post("/litestar", status_code=200, request_max_body_size=_LIMIT)(_read_with_litestar),
        post("/after-litestar", status_code=200, request_max_body_size=_LIMIT)(_read_after_litestar),
        post("/after-stream", status_code=200, request_max_body_size=_LIMIT)(_read_after_stream),
        post("/unlimited", status_code=200, request_max_body_size=None)(_read_twice),
    ],
    debug=False,
)


async def _call(path: str, messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]) -> tuple[int, Any]:
    """POST ``path`` on the raw ASGI app, fed ``messages`` and then only disconnects, as a server does once the
    client is gone; the status and the decoded JSON answer."""
    incoming = list(messages)
    sent: list[Any] = []

    async def receive() -> Any:
        await asyncio.sleep(0)  # as a server's receive would: a reader that never stops asking times out below
        return incoming.pop(0) if incoming else _DISCONNECT

    async def send(message: Any) -> None:
        sent.append(message)

    scope: Any = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await asyncio.wait_for(_APP(scope, receive, send), timeout=5)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def _chunks(*parts: bytes) -> list[dict[str, Any]]:
    return [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]


_CASES = {
    "one-chunk": (_chunks(b'{"a": 1}'), [(b"content-length", b"8")]),
    "chunks-joined": (_chunks(b'{"a":', b"", b" 1}"), []),
    "empty": (_chunks(b""), [(b"content-length", b"0")]),
    "no-message-body": (_chunks(), []),
    "at-the-limit": (_chunks(b"x" * 60, b"y" * 40), [(b"content-length", b"100")]),
    "announced-over": (_chunks(b"x"), [(b"content-length", b"101")]),  # refused before anything is read
    "streamed-over": (_chunks(b"x" * 60, b"y" * 41), []),  # no Content-Length (chunked): counted as it arrives
    "longer-than-announced": (_chunks(b"x" * 60, b"y" * 41), [(b"content-length", b"10")]),
    "unreadable-length": (_chunks(b"{}"), [(b"content-length", b"ten")]),
    "empty-length": (_chunks(b"{}"), [(b"content-length", b"")]),
    "spaced-length": (_chunks(b"{}"), [(b"content-length", b" 2 ")]),
    "negative-length": (_chunks(b"{}"), [(b"content-length", b"-1")]),
    "first-length-counts": (_chunks(b"{}"), [(b"content-length", b"2"), (b"content-length", b"999")]),
    "disconnect-midway": ([*_chunks(b"x", b"y")[:1], _DISCONNECT], []),
}


@pytest.mark.parametrize(("messages", "headers"), list(_CASES.values()), ids=list(_CASES))
async def test_the_body_is_read_as_litestar_reads_it(
    messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]
) -> None:
    ours, litestars = await _call("/ours", messages, headers), await _call("/litestar", messages, headers)
    assert ours == litestars


@pytest.mark.parametrize(
    ("case", "status", "detail"),
    [
        ("chunks-joined", 200, None),
        ("announced-over", 413, "Request Entity Too Large"),
        ("streamed-over", 413, "Request Entity Too Large"),
        ("longer-than-announced", 413, "Request Entity Too Large"),
        ("unreadable-length", 400, "Invalid content-length: 'ten'"),
        ("empty-length", 400, "Invalid content-length: ''"),
        ("disconnect-midway", 500, "Internal Server Error"),
    ],
)
async def test_what_the_answers_are(case: str, status: int, detail: str | None) -> None:
    got, answer = await _call("/ours", *_CASES[case])
    assert got == status, answer
    if detail is None:
        assert answer == {"body": '{"a": 1}', "again": '{"a": 1}'}  # and request.body() finds it afterwards
    else:
        assert answer["detail"] == detail


async def test_a_body_read_by_litestar_first_is_found_not_waited_for() -> None:
    assert await _call("/after-litestar", *_CASES["one-chunk"]) == (200, {"body": '{"a": 1}', "again": '{"a": 1}'})


async def test_a_consumed_stream_is_a_500_not_a_wait() -> None:
    status, _ = await _call("/after-stream", *_CASES["one-chunk"])
    assert status == 500


async def test_without_a_limit_any_size_is_read() -> None:
    big = b"z" * 100_000
    status, answer = await _call("/unlimited", _chunks(big[:50_000], big[50_000:]), [(b"content-length", b"100000")])
    assert (status, len(answer["body"])) == (200, 100_000)
