"""EncodedJSONResponse: the pre-encoded answer, as the ASGI messages it sends."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import Cookie
from litestar.exceptions import ImproperlyConfiguredException

from service.api.encoded import EncodedJSONResponse

BODY = b'{"decision_id":"x","capacity":{"instances":12}}'


async def sent(response: EncodedJSONResponse[Any], **layers: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        messages.append(message)

    async def receive() -> Any:  # pragma: no cover - a response never reads
        raise AssertionError

    asgi = response.to_asgi_response(None, None, **layers)  # type: ignore[arg-type]
    await asgi({"type": "http"}, receive, send)  # type: ignore[arg-type]
    return messages


async def test_sends_the_body_as_given_with_its_length_type_and_headers() -> None:
    response: EncodedJSONResponse[Any] = EncodedJSONResponse(BODY, status_code=201, headers={"Location": "/v1/d/x"})
    start, body = await sent(response)
    assert start == {
        "type": "http.response.start",
        "status": 201,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
            (b"location", b"/v1/d/x"),
        ],
    }
    assert body == {"type": "http.response.body", "body": BODY, "more_body": False}


async def test_layer_headers_are_sent_and_the_responses_own_win() -> None:
    response: EncodedJSONResponse[Any] = EncodedJSONResponse(BODY, status_code=201, headers={"Location": "/mine"})
    start, _ = await sent(
        response, headers={"Location": "/layer", "Cache-Control": "no-store", "Content-Type": "text/plain"}
    )
    assert dict(start["headers"]) == {
        b"content-type": b"application/json",
        b"content-length": str(len(BODY)).encode(),
        b"location": b"/mine",
        b"cache-control": b"no-store",
    }


async def test_what_a_hook_changed_before_sending_is_what_goes_out() -> None:
    response: EncodedJSONResponse[Any] = EncodedJSONResponse(BODY, status_code=201, headers={})
    response.content = b"{}"  # type: ignore[assignment]
    response.status_code = 200
    response.headers["X-Extra"] = "1"
    start, body = await sent(response)
    assert start["status"] == 200
    assert dict(start["headers"])[b"content-length"] == b"2"
    assert dict(start["headers"])[b"x-extra"] == b"1"
    assert body["body"] == b"{}"


@pytest.mark.parametrize(
    "layers", [{"cookies": [Cookie(key="k", value="v")]}, {"background": BackgroundTask(print, "never")}]
)
async def test_cookies_and_background_tasks_are_refused_not_dropped(layers: dict[str, Any]) -> None:
    response: EncodedJSONResponse[Any] = EncodedJSONResponse(BODY, status_code=201, headers={})
    with pytest.raises(ImproperlyConfiguredException):
        await sent(response, **layers)
