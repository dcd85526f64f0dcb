"""The Swagger UI at /docs works offline: a real browser, every non-loopback request blocked.

The browser test runs `advisor serve` (the console script) in a subprocess on a fresh SQLite database and
drives Debian's Chromium (/usr/bin/chromium) with Playwright; it never downloads a browser. Without that
Chromium (or the playwright package) it skips, unless ADVISOR_REQUIRE_BROWSER=1, then it fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from browserutil import CHROMIUM_ARGS, require_chromium
from litestar.testing import AsyncTestClient
from served import serve

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request, Route

ROOT = Path(__file__).resolve().parents[2]
UI_TIMEOUT_MS = 30_000
# Operations that must render, by operationId (Swagger UI's DOM id is operations-<tag>-<operationId>).
OPERATIONS = {
    "createRecommendation": ("POST", "/v1/recommendations"),
    "getDecision": ("GET", "/v1/decisions/{decision_id}"),
    "listDecisions": ("GET", "/v1/decisions"),
    "listRulesets": ("GET", "/v1/rulesets"),
}
# A <script src> or <link href> to anywhere but this server (absolute or protocol-relative URL).
_EXTERNAL_ASSET = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:[a-z][a-z0-9+.-]*:)?//""", re.I)


# --- without a browser: the page references only this server ----------------------------------------------


async def test_docs_page_loads_nothing_from_another_host(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script>" not in html and "<style>" not in html, "the page's CSP allows no inline script or style"
    assert not _EXTERNAL_ASSET.search(html), "the docs page loads a script, stylesheet or icon from another host"
    assets = re.findall(r"""(?:src|href)=["'](/static/(?:swagger-ui|docs)/[^"'?]+)""", html)
    assert sorted(assets) == [
        "/static/docs/docs.css",
        "/static/docs/docs.js",
        "/static/swagger-ui/favicon-32x32.png",
        "/static/swagger-ui/swagger-ui-bundle.js",
        "/static/swagger-ui/swagger-ui-standalone-preset.js",
        "/static/swagger-ui/swagger-ui.css",
    ]
    assert "SwaggerUIBundle(" in (ROOT / "service" / "static" / "docs" / "docs.js").read_text()
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert "max-age=31536000" in served.headers["cache-control"], asset
        assert served.content == (ROOT / "service" / asset.lstrip("/")).read_bytes(), asset
    spec = await client.get("/docs/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["openapi"].startswith("3.1")
    assert "/static/{file_path}" not in spec.json()["paths"]


# --- the real thing: `advisor serve` and Chromium -----------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """Base URL of `advisor serve` on loopback, migrating a fresh SQLite database at start."""
    with serve(tmp_path) as (base, _):
        yield base


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, checked before any server starts; skips (or fails) when the browser is missing."""
    return require_chromium()


@pytest.mark.browser
def test_swagger_ui_works_offline(chromium: Path, served: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    elsewhere: list[str] = []  # every request the page tried to make to another host
    page_errors: list[str] = []

    def only_loopback(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(request.url)
            route.abort("blockedbyclient")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(service_workers="block")
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            try:
                _exercise_docs(page, served)
            except AssertionError as exc:
                shot = tmp_path / "docs-failure.png"
                page.screenshot(path=shot, full_page=True)
                pytest.fail(
                    f"{exc}\n\nrequests to other hosts (blocked): {elsewhere}\n"
                    f"JavaScript errors: {page_errors}\nscreenshot: {shot}\n"
                    f"server log:\n{(tmp_path / 'server.log').read_text(errors='replace')}"
                )
        finally:
            browser.close()

    assert elsewhere == [], f"the docs page tried to reach other hosts: {elsewhere}"
    assert page_errors == [], f"JavaScript errors on the docs page: {page_errors}"


def _exercise_docs(page: Page, base: str) -> None:
    from playwright.sync_api import expect

    response = page.goto(f"{base}/docs")
    assert response is not None and response.status == 200

    # Swagger UI rendered, which it only can with its script from this server; its stylesheet came too.
    expect(page).to_have_title("advisor")
    expect(page.locator(".swagger-ui .information-container .title")).to_contain_text("advisor", timeout=UI_TIMEOUT_MS)
    assert page.evaluate(
        """() => [...document.styleSheets].some(
            (sheet) => (sheet.href || "").includes("/static/swagger-ui/swagger-ui.css") && sheet.cssRules.length > 100
        )"""
    ), "swagger-ui.css did not load"
    for operation_id, (method, path) in OPERATIONS.items():
        block = page.locator(f".opblock[id$='-{operation_id}']")
        expect(block).to_be_visible()
        expect(block.locator(".opblock-summary-method")).to_have_text(method)
        expect(block.locator(".opblock-summary-path")).to_have_attribute("data-path", path)

    # Try the worked example: POST /v1/recommendations with its prefilled body.
    create = page.locator(".opblock[id$='-createRecommendation']")
    create.locator(".opblock-summary-control").click()
    create.get_by_role("button", name="Try it out").click()
    body = create.locator("textarea.body-param__text")
    expect(body).to_be_visible()
    expect(body).to_have_value(re.compile(r'"name":\s*"fraud-xgb"'))
    create.get_by_role("button", name="Execute").click()

    live = create.locator(".live-responses-table")
    expect(live.locator("tr.response .response-col_status")).to_have_text("201", timeout=UI_TIMEOUT_MS)
    expect(live.locator("tr.response .response-col_description")).to_contain_text('"base_instances": 11')
