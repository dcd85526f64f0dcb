"""Findings 6 and 7 of the security review: local mode closed to web pages; the docs page and audit answers carry
the headers browsers and caches act on.

Before: local mode answered any Host (DNS rebinding could read the audit trail) and took a text/plain POST to
reload or impact (a cross-site form could send it); /docs sent no CSP, could be framed, and audit answers could be
cached."""

from __future__ import annotations

from typing import Any

import pytest
from apiclients import KEY_ENTRIES, MakeClient
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE

Client = AsyncTestClient  # type: ignore[type-arg]
EVIL = {"Origin": "https://evil.example"}


@pytest.mark.parametrize(
    "host",
    ["attacker.example", "attacker.example:8000", "127.0.0.1.nip.io", "10.0.0.1", "[::1]evil.example", "localhost:x"],
)
async def test_local_mode_answers_loopback_host_names_only(client: Client, host: str) -> None:
    response = await client.get("/v1/decisions", headers={"host": host})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "host-not-allowed"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000"])
async def test_local_mode_answers_its_own_names(client: Client, host: str) -> None:
    assert (await client.get("/v1/decisions", headers={"host": host})).status_code == 200


@pytest.mark.parametrize("path", ["/v1/rulesets/reload", "/v1/rulesets/impact", "/v1/recommendations"])
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
async def test_local_mode_refuses_a_post_a_form_could_send(client: Client, path: str, content_type: str) -> None:
    response = await client.post(path, content=b"x", headers={"content-type": content_type, **EVIL})
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported-media-type"


async def test_local_mode_refuses_a_bodiless_post_not_declared_json(client: Client) -> None:
    decided = await client.post("/v1/recommendations", json=WORKED_EXAMPLE)
    replay = f"/v1/decisions/{decided.json()['decision_id']}/replay"
    client.headers.pop("content-type")
    assert (await client.post(replay)).status_code == 415
    assert (await client.post("/v1/rulesets/reload")).status_code == 415
    assert (await client.post(replay, headers={"content-type": "application/json; charset=utf-8"})).status_code == 200


async def test_with_api_keys_neither_applies(make_client: MakeClient, api_keys: dict[str, str]) -> None:
    key = {"X-API-Key": api_keys["everything"]}
    async with make_client(api_keys=KEY_ENTRIES) as client:
        client.headers.pop("content-type")
        decided = await client.post("/v1/recommendations", json=WORKED_EXAMPLE, headers=key)
        assert decided.status_code == 201
        listed = await client.get("/v1/decisions", headers={**key, "host": "advisor.internal.example"})
        assert listed.status_code == 200
        assert (await client.post(f"/v1/decisions/{decided.json()['decision_id']}/replay", headers=key)).is_success


@pytest.mark.parametrize("path", ["/docs", "/docs/openapi.json"])
async def test_the_docs_page_is_locked_down(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    csp = {d.split()[0]: d.split()[1:] for d in response.headers["content-security-policy"].split("; ")}
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no inline script: the page starts Swagger UI from a file
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_audit_answers_are_not_stored_by_caches(client: Client) -> None:
    decided = await client.post("/v1/recommendations", json=WORKED_EXAMPLE)
    decision = decided.json()["decision_id"]
    paths = ["/v1/decisions", f"/v1/decisions/{decision}", f"/v1/decisions/{decision}/what-if"]
    responses: list[Any] = [await client.get(p) for p in paths]
    responses.append(await client.post(f"/v1/decisions/{decision}/replay"))
    for path, response in zip([*paths, "replay"], responses, strict=True):
        assert response.status_code == 200, (path, response.text)
        assert response.headers["cache-control"] == "no-store", path


async def test_local_mode_wants_exactly_one_host_header(client: Client) -> None:
    """The second reader's finding: two Host headers (evil, then localhost) were answered by the last."""
    two = await client.get("/v1/decisions", headers=[("host", "attacker.example"), ("host", "localhost")])
    assert two.status_code == 400, two.text  # refused, whichever layer sees it first


async def test_local_mode_takes_exactly_application_json(client: Client) -> None:
    """The browser's Reporting API posts application/reports+json without a page script."""
    response = await client.post("/v1/rulesets/reload", headers={"content-type": "application/reports+json"})
    assert response.status_code == 415
