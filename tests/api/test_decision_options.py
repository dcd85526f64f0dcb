"""POST /v1/recommendations declares ``ruleset_version`` (query) and ``Idempotency-Key`` (header) as parameters:
Litestar checks them, and the OpenAPI document describes them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

from service.api.recommendations import IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_KEY_PATTERN, RULESET_VERSION_MAX_LENGTH
from service.openapi import render_openapi

Client = AsyncTestClient  # type: ignore[type-arg]
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
    assert problem["detail"] == "; ".join(f"{key}: {message}" for key, _, message in errors)
    return errors


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ("?ruleset_version=" + "v" * 65, [], [("ruleset_version", "query", TOO_LONG)]),
        ("", [(IDEMPOTENCY_KEY_HEADER, "")], [("idempotency_key", "header", KEY_EMPTY)]),
        ("", [(IDEMPOTENCY_KEY_HEADER, "x" * 256)], [("idempotency_key", "header", KEY_TOO_LONG)]),
        ("", [(IDEMPOTENCY_KEY_HEADER, " leading")], [("idempotency_key", "header", KEY_PATTERN)]),
        (
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
    assert sorted(_errors(await _post(client, query, headers))) == sorted(expected)
    history = (await client.get("/v1/decisions")).json()
    assert history["items"] == []


async def test_with_an_invalid_body_too_the_options_are_reported_first(client: Client) -> None:
    """Litestar checks the parameters before the handler reads the body: the body's errors come on the retry."""
    body = json.loads(BODY)
    body["traffic"]["peak_rps"] = -1
    response = await client.post(
        "/v1/recommendations", json=body, headers={IDEMPOTENCY_KEY_HEADER: ""}, params={"ruleset_version": "v" * 65}
    )
    assert sorted(key for key, _, _ in _errors(response)) == ["idempotency_key", "ruleset_version"]


async def test_valid_options_are_used(client: Client) -> None:
    active = (await _post(client)).json()["ruleset"]["version"]
    longest = "v" * RULESET_VERSION_MAX_LENGTH  # at the limit: valid, and unknown
    assert (await _post(client, "?ruleset_version=" + longest)).json()["version"] == longest
    assert (await _post(client, f"?ruleset_version={active}")).status_code == 201
    assert (await _post(client, "?other=1")).status_code == 201  # other query parameters are ignored
    first = await _post(client, headers=[(IDEMPOTENCY_KEY_HEADER, "order 42/retry:1")])
    again = await _post(client, headers=[(IDEMPOTENCY_KEY_HEADER.upper(), "order 42/retry:1")])
    assert first.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content


def test_the_options_are_documented_with_their_constraints() -> None:
    operation = json.loads(render_openapi())["paths"]["/v1/recommendations"]["post"]
    parameters = {(p["in"], p["name"]): p for p in operation["parameters"]}
    assert parameters[("query", "ruleset_version")]["schema"]["maxLength"] == RULESET_VERSION_MAX_LENGTH
    key = parameters[("header", IDEMPOTENCY_KEY_HEADER)]
    assert not key["required"]
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
    assert key["schema"]["pattern"] == IDEMPOTENCY_KEY_PATTERN
