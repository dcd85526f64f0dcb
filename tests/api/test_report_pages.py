"""The HTML pages over HTTP: the form, its errors, the report, and who may see them (no browser; see
tests/report/test_report_browser.py for Chromium)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from conftest import KEY_ENTRIES, MakeClient
from litestar.testing import AsyncTestClient
from profiles import WORKED_EXAMPLE
from reportread import plotted

from service.api.profile_form import worked_example_values
from service.contract import WorkloadProfile

Client = AsyncTestClient  # type: ignore[type-arg]
# A browser's form post (the clients send JSON's Content-Type by default, as local mode wants of API calls).
FORM = {"content-type": "application/x-www-form-urlencoded"}
_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def _token(client: Client, path: str = "/") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = _TOKEN.search(page.text)
    assert match is not None, "the page's form carries no CSRF token"
    return match.group(1)


async def _submit(client: Client, values: dict[str, str]) -> Any:
    return await client.post(
        "/", data=values | {"_csrf_token": await _token(client)}, headers=FORM, follow_redirects=False
    )


async def test_the_form_explains_every_field_from_the_published_schema(client: Client) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    schema = (await client.get("/docs/openapi.json")).json()["components"]["schemas"]
    for component, prefix in (("Workload", "workload."), ("Sla", "sla."), ("Traffic", "traffic.")):
        for name, node in schema[component]["properties"].items():
            if name == "peak_windows":
                continue
            assert f'name="{prefix}{name}"' in page.text, name
            described = node.get("description") or next(
                (o.get("description") for o in node.get("anyOf", ()) if o.get("description")), None
            )
            if described:
                assert described in html.unescape(page.text), name
    assert page.text.count('name="traffic.peak_windows.cron"') >= 2, "peak windows are repeated fields"
    assert '<link rel="stylesheet" href="/static/report/report.css' in page.text
    assert "<script" not in page.text and "style=" not in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["cache-control"] == "no-store"


async def test_the_worked_example_lands_on_its_report(client: Client) -> None:
    posted = await _submit(client, worked_example_values())
    assert posted.status_code == 303
    location = posted.headers["location"]
    decision_id = location.rsplit("/", 1)[1]
    assert location == f"/decisions/{decision_id}"
    audited = (await client.get(f"/v1/decisions/{decision_id}")).json()
    assert audited["profile"]["traffic"]["peak_rps"] == 150
    assert audited["caller"].startswith("local@")
    report = await client.get(location)
    assert report.status_code == 200
    answer = audited["recommendation"]
    assert f"{answer['instance']['instance_type']} x {answer['capacity']['instances']}" in report.text
    assert decision_id in report.text and answer["ruleset"]["version"] in report.text
    charts = plotted(report.text)
    assert set(charts) == {"capacity", "scaling", "az", "cost"}
    assert len(charts["cost"].of("cheaper") + charts["cost"].of("dearer")) > 0, "the what-if entries are plotted"
    for entry in answer["explanation"]:
        assert f'data-rule="{entry["rule_id"]}"' in report.text
    assert re.search(r"tables/\w+\.yaml:\d+", report.text), "each rule names its file and line"
    assert f'href="/v1/decisions/{decision_id}/what-if"' in report.text


async def test_an_invalid_field_is_answered_next_to_it(client: Client) -> None:
    values = worked_example_values() | {"traffic.peak_rps": "-5", "sla.availability": "lots"}
    page = await _submit(client, values)
    assert page.status_code == 422
    assert re.search(r'id="traffic\.peak_rps-error">[^<]*0\.001', page.text)
    assert re.search(r'id="sla\.availability-error">[^<]*number', page.text)
    assert 'value="-5"' in page.text, "what was typed is kept"


async def test_a_missing_required_field_and_a_bad_window(client: Client) -> None:
    values = worked_example_values()
    del values["sla.availability"]
    windows = {"traffic.peak_windows.cron": ["at eight", ""], "traffic.peak_windows.rps": ["100", ""]}
    page = await client.post("/", data={**values, **windows, "_csrf_token": await _token(client)}, headers=FORM)
    assert page.status_code == 422
    assert 'id="sla.availability-error"' in page.text
    assert 'id="traffic.peak_windows.cron[0]-error"' in page.text


async def test_the_form_is_validated_as_the_json_body_is(client: Client) -> None:
    """Every key the form maps to is a field of the contract: the JSON API takes the same value."""
    values = worked_example_values() | {
        "traffic.mean_rps": "60",
        "traffic.burstiness": "periodic",
        "traffic.peak_windows.cron": "cron(0 8 ? * MON-FRI *)",
        "traffic.peak_windows.end_cron": "cron(0 18 ? * MON-FRI *)",
        "traffic.peak_windows.rps": "150",
    }
    posted = await _submit(client, values)
    assert posted.status_code == 303, posted.text
    stored = (await client.get(f"/v1/decisions/{posted.headers['location'].rsplit('/', 1)[1]}")).json()
    assert stored["profile"]["traffic"]["peak_windows"] == [
        {"cron": "cron(0 8 ? * MON-FRI *)", "end_cron": "cron(0 18 ? * MON-FRI *)", "rps": 150}
    ]
    again = await client.post("/v1/recommendations", json=stored["profile"])
    assert again.status_code == 201
    assert WorkloadProfile  # the contract type both paths decode into


async def test_a_post_without_the_csrf_token_is_refused(client: Client) -> None:
    await client.get("/")
    page = await client.post("/", data=worked_example_values(), headers=FORM, follow_redirects=False)
    assert page.status_code == 403


async def test_the_json_api_still_refuses_a_form_body(client: Client) -> None:
    refused = await client.post("/v1/recommendations", data=worked_example_values(), headers=FORM)
    assert refused.status_code == 415
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_an_unknown_decision_is_a_404_page(client: Client) -> None:
    page = await client.get("/decisions/01234567-89ab-7def-8123-456789abcdef")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "No decision has id" in page.text


async def test_with_keys_the_pages_need_a_session_with_the_scope(
    make_client: MakeClient, api_keys: dict[str, str]
) -> None:
    async with make_client(api_keys=KEY_ENTRIES, session_cookie_secure=False) as client:
        created = await client.post(
            "/v1/recommendations",
            json=WORKED_EXAMPLE,
            headers={"Authorization": f"Bearer {api_keys['decider']}"},
        )
        decision_id = created.json()["decision_id"]
        report = f"/decisions/{decision_id}"
        refused = await client.get(report, follow_redirects=False)
        assert refused.status_code == 303 and refused.headers["location"] == f"/sign-in?next={report}"
        assert (await client.get("/", follow_redirects=False)).status_code == 303
        # a bearer key alone does not open the pages: they take a session
        assert (
            await client.get(report, headers={"Authorization": f"Bearer {api_keys['auditor']}"}, follow_redirects=False)
        ).status_code == 303

        token = await _token(client, "/sign-in")
        wrong = await client.post(
            "/sign-in", data={"api_key": "not-a-key", "next": report, "_csrf_token": token}, headers=FORM
        )
        assert wrong.status_code == 401 and 'id="api_key-error"' in wrong.text

        signed = await client.post(
            "/sign-in",
            data={"api_key": api_keys["auditor"], "next": report, "_csrf_token": token},
            headers=FORM,
            follow_redirects=False,
        )
        assert signed.status_code == 303 and signed.headers["location"] == report
        cookie = next(h for h in signed.headers.get_list("set-cookie") if h.startswith("advisor_session="))
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Max-Age=28800" in cookie
        assert api_keys["auditor"] not in cookie
        page = await client.get(report)
        assert page.status_code == 200 and "Sign out (key:auditor)" in page.text
        assert (await client.get("/")).status_code == 403, "audit:read does not allow asking (decide)"

        out = await client.post(
            "/sign-out",
            data={"_csrf_token": _TOKEN.search(page.text).group(1)},  # type: ignore[union-attr]
            headers=FORM,
            follow_redirects=False,
        )
        assert out.status_code == 303
        assert (await client.get(report, follow_redirects=False)).status_code == 303


async def test_sign_in_goes_only_to_a_path_on_this_site(make_client: MakeClient, api_keys: dict[str, str]) -> None:
    async with make_client(api_keys=KEY_ENTRIES, session_cookie_secure=False) as client:
        token = await _token(client, "/sign-in")
        signed = await client.post(
            "/sign-in",
            data={"api_key": api_keys["decider"], "next": "//elsewhere.example/", "_csrf_token": token},
            headers=FORM,
            follow_redirects=False,
        )
        assert signed.headers["location"] == "/"


async def test_session_cookies_are_secure_by_default(make_client: MakeClient, api_keys: dict[str, str]) -> None:
    async with make_client(api_keys=KEY_ENTRIES) as client:
        page = await client.get("/sign-in")
        csrf = next(h for h in page.headers.get_list("set-cookie") if h.startswith("advisor_csrf="))
        assert "Secure" in csrf and "HttpOnly" in csrf and "samesite=strict" in csrf.lower()


async def test_an_invalid_decision_id_is_a_422_page(client: Client) -> None:
    page = await client.get("/decisions/not-a-uuid")
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "is not a UUID" in page.text


async def test_with_keys_the_pages_are_rate_limited_per_signed_in_key(
    make_client: MakeClient, api_keys: dict[str, str]
) -> None:
    async with make_client(api_keys=KEY_ENTRIES, session_cookie_secure=False, rate_limit_per_minute=4) as client:
        token = await _token(client, "/sign-in")  # 1: counted for the client address
        signed = await client.post(  # 2
            "/sign-in",
            data={"api_key": api_keys["decider"], "_csrf_token": token},
            headers=FORM,
            follow_redirects=False,
        )
        assert signed.status_code == 303
        for _ in range(4):  # the signed-in key has a count of its own
            assert (await client.get("/")).status_code == 200
        refused = await client.get("/")
        assert refused.status_code == 429
        assert "key:decider may make 4 requests a minute" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1


async def test_local_mode_pages_answer_loopback_host_names_only(client: Client) -> None:
    """A page rebound to 127.0.0.1 by another site's DNS names that site in Host: it cannot read a form's token."""
    refused = await client.get("/", headers={"host": "attacker.example"})
    assert refused.status_code == 400
    assert "_csrf_token" not in refused.text


class _FormFields(HTMLParser):
    """Every field of a page's form as a browser submits it: inputs with their value, selects with their choice."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._first: str | None = None
        self._chosen: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and "name" in a:
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._first, self._chosen = a["name"], None, None
        elif tag == "option" and self._select is not None:
            self._first = a["value"] if self._first is None else self._first
            self._chosen = a["value"] if "selected" in a else self._chosen

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            self.fields.append((self._select, self._chosen if self._chosen is not None else self._first or ""))
            self._select = None


async def test_the_form_as_a_browser_submits_it_is_accepted(client: Client) -> None:
    """Every field, defaults included, posted back as the page renders them with the worked example filled in."""
    reader = _FormFields()
    reader.feed((await client.get("/?example=worked")).text)
    assert {name for name, _ in reader.fields} >= set(worked_example_values())
    posted = await client.post("/", data=_multi(reader.fields), headers=FORM, follow_redirects=False)
    assert posted.status_code == 303, re.findall(r'class="error"[^>]*>([^<]*)', posted.text)


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped
