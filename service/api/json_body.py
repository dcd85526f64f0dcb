"""Reading a JSON request body: hostile input answered as the client's error, every failing field listed.

:func:`read_json` reads the body with ``Request.body()`` and decodes it strictly with msgspec, in this order:

* over the route's size limit: ``413`` stating the limit; empty: ``400`` ``empty-body``;
* a leading byte order mark: ``400`` ``malformed-json`` (JSON text is UTF-8 without one, RFC 8259);
* nested deeper than :data:`MAX_DEPTH`: ``400`` ``body-nested-too-deeply``, found before decoding (msgspec would
  raise ``RecursionError`` at a few thousand levels, and nothing here is deeper than four);
* not JSON, invalid UTF-8, a number beyond the range of a double (``1e400``): ``400`` ``malformed-json``;
* a key repeated in one object: ``400`` ``duplicate-key`` (the audit keeps the body as received, and another
  parser could take the other value);
* not the body's type (strict: ``"150"`` is not a number): ``422`` ``invalid-request`` listing every failing field
  (:mod:`service.api.body_errors`).
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from service.api.body_errors import field_errors
from service.api.body_schema import body_validator
from service.api.problems import Problem
from service.contract.decoding import convert_strictly

__all__ = ["MAX_DEPTH", "nested_deeper_than", "read_json", "to_body_type"]

T = TypeVar("T", bound=msgspec.Struct)

MAX_DEPTH = 32
_BOM = b"\xef\xbb\xbf"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_decode = msgspec.json.Decoder().decode
_REASONS = {  # msgspec's words where they would puzzle a caller
    "Number out of range": "a number is beyond the range of a double (such as 1e400)",
    "Input data was truncated": "the body ends before the JSON text does",
}


async def read_json(request: Request[Any, Any, Any], type_: type[T], *, check_schema: bool = False) -> tuple[T, bytes]:
    """The body decoded as ``type_``, and the body exactly as received.

    ``check_schema``: also hold a body msgspec accepts to the published schema, for types whose schema says more
    than msgspec checks (``extra_json_schema``); off the hot path only.
    """
    body = await _body(request)
    value = _decoded(body)
    decoded = _converted(value, type_)
    if check_schema and next(body_validator(type_.__name__).iter_errors(value), None) is not None:
        raise _invalid(value, type_, None)
    return decoded, body


async def _body(request: Request[Any, Any, Any]) -> bytes:
    try:
        body = await request.body()
    except RequestEntityTooLarge:
        limit = request.route_handler.resolve_request_max_body_size()
        raise Problem(
            413,
            "body-too-large",
            "Request body too large",
            f"the body is larger than the limit of {limit} bytes.",
            limit_bytes=limit,
        ) from None
    if not body:
        raise Problem(400, "empty-body", "The request has no body", "send the request body as JSON.")
    return body


def _decoded(body: bytes) -> Any:
    if body.startswith(_BOM):
        raise _malformed("the body starts with a byte order mark; send UTF-8 JSON without one.")
    if nested_deeper_than(body, MAX_DEPTH):
        raise Problem(
            400,
            "body-nested-too-deeply",
            "Body nested too deeply",
            f"body nested too deeply: arrays and objects may nest at most {MAX_DEPTH} levels.",
            max_depth=MAX_DEPTH,
        )
    try:
        value = _decode(body)
    except msgspec.DecodeError as exc:  # also "Number out of range" (a ValidationError of the decoder)
        reason = str(exc).split(" - at ", 1)[0]
        raise _malformed(f"{_REASONS.get(reason, reason)}.") from None
    if _may_repeat_keys(body, value):
        try:
            json.loads(body, object_pairs_hook=_unique_keys)
        except _RepeatedKey as exc:
            raise Problem(
                400,
                "duplicate-key",
                "Duplicate key in the body",
                f"the key {json.dumps(exc.key)} appears twice in one object; send each key once.",
            ) from None
    return value


def to_body_type(value: Any, type_: type[T]) -> T:
    """A decoded JSON value as ``type_``, validated as a JSON body is (the ``422`` problem listing every failing
    field otherwise): for bodies that arrive in another form, such as the HTML form's fields."""
    return _converted(value, type_)


def _converted(value: Any, type_: type[T]) -> T:
    try:
        return convert_strictly(value, type_)
    except msgspec.ValidationError as exc:
        raise _invalid(value, type_, exc) from None


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether arrays and objects in JSON text ``body`` nest more than ``limit`` deep (brackets inside strings do
    not count). Costs two byte counts when the body holds ``limit`` brackets or fewer."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in b"[{" else -1
        if depth > limit:
            return True
    return False


def _may_repeat_keys(body: bytes, value: Any) -> bool:
    """False when no key can be repeated: every key is followed by one ``:`` so a body has at least as many ``:``
    as keys, and the decoded objects hold each distinct key once; when the counts agree there is no repeat. A ``:``
    inside a string makes it True, and the exact check runs."""
    return body.count(b":") != _key_count(value)


def _key_count(value: Any) -> int:
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        if type(item) is dict:
            count += len(item)
            pending.extend(v for v in item.values() if type(v) is dict or type(v) is list)
        elif type(item) is list:
            pending.extend(v for v in item if type(v) is dict or type(v) is list)
    return count


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return result


def _malformed(detail: str) -> Problem:
    return Problem(400, "malformed-json", "The body is not valid JSON", detail)


def _invalid(value: Any, type_: type[Any], rejected: msgspec.ValidationError | None) -> Problem:
    errors = field_errors(value, type_.__name__, rejected)
    detail = "; ".join(f"{e['key'] or 'the body'}: {e['message']}" for e in errors)
    return Problem(422, "invalid-request", "The request is invalid", detail, errors=errors)
