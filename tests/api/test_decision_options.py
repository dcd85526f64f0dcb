"""POST /v1/recommendations reads ``ruleset_version`` and ``Idempotency-Key`` itself (service/api/decision_options.py):
it must answer exactly as Litestar did when they were handler parameters, and document them the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from litestar import Request
from litestar.datastructures import Headers
from litestar.exceptions import ValidationException
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

from service.api.decision_options import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    RULESET_VERSION_MAX_LENGTH,
    decision_options,
)

Client = AsyncTestClient  # type: ignore[type-arg]
ROOT = Path(__file__).resolve().parents[2]
BODY = json.dumps(WORKED_EXAMPLE).encode()
TOO_LONG = "Expected `str` of length <= 64"
KEY_EMPTY = "Expected `str` of length >= 1"
KEY_TOO_LONG = "Expected `str` of length <= 255"
KEY_PATTERN = f"Expected `str` matching regex '{IDEMPOTENCY_KEY_PATTERN}'"


async def _post(client: Client, query: str = "", headers: list[tuple[str, str]] | None = None) -> Any:
    return await client.post(
        "/v1/recommendations" + query,
        content=BODY,
        headers=[("content-type", "application/json"), *(headers or [])],
    )


def _errors(response: Any) -> list[tuple[str, str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "invalid-request"
    errors = [(e["key"], e["source"], e["message"]) for e in problem["errors"]]
    assert problem["detail"] == "; ".join(message for *_, message in errors)
    return errors


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ("?ruleset_version=" + "v" * 65, [], [("ruleset_version", "query", TOO_LONG)]),
        ("", [(IDEMPOTENCY_KEY_HEADER, "")], [("idempotency_key", "header", KEY_EMPTY)]),
        ("", [(IDEMPOTENCY_KEY_HEADER, "x" * 256)], [("idempotency_key", "header", KEY_TOO_LONG)]),
        ("", [(IDEMPOTENCY_KEY_HEADER, " leading")], [("idempotency_key", "header", KEY_PATTERN)]),
        (  # every violation, the query's first
            "?ruleset_version=" + "v" * 65,
            [(IDEMPOTENCY_KEY_HEADER, "")],
            [("ruleset_version", "query", TOO_LONG), ("idempotency_key", "header", KEY_EMPTY)],
        ),
    ],
    ids=["version-too-long", "key-empty", "key-too-long", "key-pattern", "both"],
)
async def test_invalid_options_are_422_with_every_error_and_store_nothing(
    client: Client, query: str, headers: list[tuple[str, str]], expected: list[tuple[str, str, str]]
) -> None:
    assert _errors(await _post(client, query, headers)) == expected
    history = (await client.get("/v1/decisions")).json()
    assert history["items"] == []


async def test_with_an_invalid_body_too_the_body_is_reported_first(client: Client) -> None:
    """Litestar listed both when the options were handler parameters; now the options are checked once the body
    decodes, so the client learns of them on its retry."""
    body = json.loads(BODY)
    body["traffic"]["peak_rps"] = -1
    response = await client.post(
        "/v1/recommendations", json=body, headers={IDEMPOTENCY_KEY_HEADER: ""}, params={"ruleset_version": "v" * 65}
    )
    assert [(key, source) for key, source, _ in _errors(response)] == [("traffic.peak_rps", "body")]


async def test_valid_options_are_used(client: Client) -> None:
    active = (await _post(client)).json()["ruleset"]["version"]
    longest = "v" * RULESET_VERSION_MAX_LENGTH  # at the limit: valid, and unknown
    assert (await _post(client, "?ruleset_version=" + longest)).json()["version"] == longest
    # The last ruleset_version of the query string counts; an empty one is a version too (and unknown).
    assert (await _post(client, f"?ruleset_version=nope&ruleset_version={active}")).status_code == 201
    assert (await _post(client, f"?ruleset_version={active}&ruleset_version=nope")).json()["version"] == "nope"
    assert (await _post(client, "?ruleset_version=")).json()["version"] == ""
    assert (await _post(client, "?other=1")).status_code == 201  # other query parameters are ignored
    first = await _post(client, headers=[(IDEMPOTENCY_KEY_HEADER, "order 42/retry:1")])
    again = await _post(client, headers=[(IDEMPOTENCY_KEY_HEADER.upper(), "order 42/retry:1")])
    assert first.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content


def _request(headers: list[tuple[bytes, bytes]]) -> Request[Any, Any, Any]:
    scope: Any = {
        "type": "http",
        "method": "POST",
        "path": "/v1/recommendations",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "root_path": "",
    }
    return Request(scope)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"idempotency-key", b"a"), (b"idempotency-key", b" b")],
        [(b"Idempotency-Key", b"b"), (b"idempotency-key", b"a")],
        [(b"x-other", b"1")],
    ],
    ids=["first-of-two", "any-case", "absent"],
)
def test_the_first_idempotency_key_header_counts_as_in_litestars_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """Litestar's test client joins repeated headers, a real server passes each one: this reads a raw scope."""
    request = _request(headers)
    assert decision_options(request).idempotency_key == Headers.from_scope(request.scope).get(IDEMPOTENCY_KEY_HEADER)


def test_a_key_is_read_as_latin_1_and_must_be_printable_ascii() -> None:
    with pytest.raises(ValidationException) as refused:
        decision_options(_request([(b"idempotency-key", "café".encode("latin-1"))]))
    assert refused.value.extra == [{"message": KEY_PATTERN, "key": "idempotency_key", "source": "header"}]
