"""The body of ``POST /v1/recommendations``: a ``WorkloadProfile``, decoded here rather than by Litestar's ``data``
parameter.

With a ``data`` parameter Litestar decodes the body to Python builtins, builds a model of the handler's parameters
for every request and converts the builtins into the Struct through it. Decoding to builtins and converting them
with msgspec here, without that model, is the same check (``strict=False``, Litestar's own conversion setting) for
less: in interleaved pairs of 8 s runs, the endpoint served 4 % more requests/s than with the ``data`` argument
(eight pairs, 5,807 -> 6,037 req/s on average; an earlier four pairs with a one-step typed decode, always run
second, showed 18 %).

Errors are raised as Litestar raised them, so the answers do not change: malformed JSON is a 400 with msgspec's
message; a profile that does not fit the schema is a ``ValidationException`` (422) whose error names the field
path (``traffic.peak_rps``, or ``data`` for the whole body) with ``source`` ``body``; an empty body is the 422
Litestar gave for a missing ``data``. ``tests/api/test_profile_body.py`` holds these to what Litestar answered. The
OpenAPI operation documents the body as before (``RecommendationOperation`` in ``service/api/recommendations.py``).

The bytes are read from the ASGI ``receive`` channel here too (``_read_body``), with Litestar's limits and errors:
``Request.body()`` builds the whole ``Headers`` mapping to find Content-Length and runs an async generator per
request, which was about 4 % of the worker's CPU time under load (py-spy), for what one loop over the raw header
list and one ``receive`` call do.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState

from service.api.context import raw_header
from service.api.validation import field_error, validation_failed
from service.contract import WorkloadProfile

__all__ = ["read_profile"]

# Two steps, as Litestar did: JSON to builtins, then builtins to the Struct. One typed decode would be a little
# cheaper, but it checks a repeated key's every value where Litestar's dict kept the last, and it calls a number
# out of range a schema error (422) where Litestar found the JSON unreadable (400).
_decode = msgspec.json.Decoder().decode
_PATH = re.compile(r"`\$\.(.+)`$")  # where msgspec says the error is; Litestar's ERR_RE


async def read_profile(request: Request[Any, Any, Any]) -> tuple[WorkloadProfile, bytes]:
    """The decoded profile and the body exactly as received (what the audit row stores)."""
    body = await _read_body(request)
    if not body:
        raise validation_failed(request, [field_error("'data'", "data", "body")])  # Litestar's words for no body
    try:
        value = _decode(body)
    except msgspec.DecodeError as exc:  # not JSON
        raise ClientException(str(exc)) from exc
    try:
        return msgspec.convert(value, WorkloadProfile, strict=False, str_keys=True), body
    except msgspec.ValidationError as exc:
        where = _PATH.search(str(exc))
        raise validation_failed(request, [field_error(exc, where.group(1) if where else "data", "body")]) from exc


async def _read_body(request: Request[Any, Any, Any]) -> bytes:
    """What ``await request.body()`` returns, raising what it raises: 413 over the route's
    ``request_max_body_size`` (announced by Content-Length, or counted as it arrives), 400 for an unreadable
    Content-Length, 500 if the client disconnected or the body was read already. The body is left in the scope's
    state, where ``request.body()`` finds it if anything asks again. ``tests/api/test_profile_body.py`` sends the
    same ASGI messages to both. One difference, for messages no ASGI server sends: a message without a ``body``
    key counts as empty (the ASGI default) where Litestar fails with a KeyError."""
    state = ScopeState.from_scope(request.scope)
    cached = value_or_default(state.body, None)
    if cached is not None:
        return cached
    if not request.is_connected:
        raise InternalServerException("stream consumed")
    limit: float = request.route_handler.resolve_request_max_body_size() or math.inf
    # The first Content-Length, even an empty one (uvicorn itself rejects a repeated or empty one).
    announced = raw_header(request.scope, b"content-length", None)
    if announced is not None:
        text = announced.decode("latin-1")
        try:
            length = int(text)  # str's int(), as Litestar: surrounding whitespace allowed
        except ValueError:
            raise ClientException(f"Invalid content-length: {text!r}") from None
        if length > limit:
            raise RequestEntityTooLarge
    chunks: list[bytes] = []
    received = 0
    while True:
        event = await request.receive()
        if event["type"] == "http.disconnect":
            raise InternalServerException("client disconnected prematurely")
        if event["type"] == "http.request":
            chunk = event.get("body", b"")
            if chunk:
                received += len(chunk)
                if received > limit:
                    raise RequestEntityTooLarge
                chunks.append(chunk)
            if not event.get("more_body", False):
                break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    state.body = body
    request.is_connected = False  # as after Litestar's stream: the request's messages are all read
    return body
