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
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException

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
    body = await request.body()  # Litestar enforces request_max_body_size here (413)
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
