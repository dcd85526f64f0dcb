"""The HTML pages in a real browser: `advisor serve` and Debian's Chromium (Playwright), every request to another
host blocked and recorded, console errors recorded, axe-core (shipped inside axe-playwright-python, offline) run on
each page."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from browserutil import CHROMIUM_ARGS, require_chromium
from profiles import WORKED_EXAMPLE
from served import serve

from service.api.auth import hash_key, new_key

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.browser
UI_TIMEOUT_MS = 30_000
SERIOUS = {"serious", "critical"}
_FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class Watch:
    """What the pages did that they must not: reach another host, log an error, fail accessibility checks."""

    elsewhere: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # Statuses a test asks for (the 422 of a bad field, the 401 of a wrong key): Chromium logs every 4xx document
    # as a console error, and only those are not errors here.
    expected_statuses: set[int] = field(default_factory=set)

    def _console(self, kind: str, text: str) -> None:
        status = _FAILED_LOAD.match(text)
        if kind == "error" and not (status and int(status.group(1)) in self.expected_statuses):
            self.console_errors.append(text)

    def attach(self, context: BrowserContext) -> None:
        def only_loopback(route: Any, request: Any) -> None:
            if urlsplit(request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                self.elsewhere.append(request.url)
                route.abort("blockedbyclient")

        context.route("**/*", only_loopback)
        context.on("page", self._watch_page)

    def _watch_page(self, page: Page) -> None:
        page.on("console", lambda message: self._console(message.type, message.text))
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def audit(self, page: Page) -> None:
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(page)
        for violation in results.response["violations"]:
            if violation.get("impact") in SERIOUS:
                nodes = [n.get("target") for n in violation.get("nodes", [])][:3]
                self.violations.append(f"{page.url}: {violation['id']} ({violation['impact']}) at {nodes}")

    def assert_clean(self) -> None:
        assert self.elsewhere == [], f"the pages tried to reach other hosts: {self.elsewhere}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.violations == [], "axe-core: serious or critical violations:\n" + "\n".join(self.violations)


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _context(browser: Browser, watch: Watch) -> BrowserContext:
    context = browser.new_context(service_workers="block")
    watch.attach(context)
    return context


def _fill_worked_example(page: Page) -> None:
    """Type the worked example into the form, field by field, as a person would."""
    for name, value in _flat(WORKED_EXAMPLE).items():
        field_ = page.locator(f'[name="{name}"]')
        if field_.evaluate("e => e.tagName") == "SELECT":
            field_.select_option(str(value))
        else:
            field_.fill(str(value))


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        flat |= _flat(value, name) if isinstance(value, dict) else {name: value}
    return flat


def test_ask_with_the_form_and_read_the_report(browser: Browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    watch = Watch()
    with serve(tmp_path) as (base, _):
        context = _context(browser, watch)
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        assert page.goto(f"{base}/").status == 200  # type: ignore[union-attr]
        expect(page.get_by_role("heading", name="Ask for a recommendation")).to_be_visible()
        watch.audit(page)

        # a 422 shows next to its field
        watch.expected_statuses.add(422)
        _fill_worked_example(page)
        page.locator('[name="traffic.peak_rps"]').fill("-5")
        page.get_by_role("button", name="Recommend").click()
        error = page.locator('[id="traffic.peak_rps-error"]')
        expect(error).to_be_visible()
        expect(error).to_contain_text("0.001")
        expect(page.locator('[id="traffic.peak_rps"]')).to_have_attribute("aria-invalid", "true")
        watch.audit(page)

        # the worked example lands on its report
        page.locator('[name="traffic.peak_rps"]').fill("150")
        page.get_by_role("button", name="Recommend").click()
        page.wait_for_url(re.compile(r"/decisions/[0-9a-f-]{36}$"))
        decision_id = page.url.rsplit("/", 1)[1]
        _check_report(page, base, decision_id)
        watch.audit(page)
        page.set_viewport_size({"width": 375, "height": 800})  # phone width: no sideways scrolling of the page
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        context.close()
    watch.assert_clean()


def _check_report(page: Page, base: str, decision_id: str, key: str | None = None) -> None:
    from playwright.sync_api import expect

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with urllib.request.urlopen(
        urllib.request.Request(f"{base}/v1/decisions/{decision_id}", headers=headers)
    ) as response:
        answer = json.loads(response.read())["recommendation"]
    summary = page.locator("dl.summary")
    expect(summary).to_contain_text(f"{answer['instance']['instance_type']} x {answer['capacity']['instances']}")
    expect(summary).to_contain_text(f"{answer['cost']['usd_per_month_expected']:,.2f} USD expected")
    expect(summary).to_contain_text(decision_id)
    charts = page.locator("figure.chart svg[role=img]")
    expect(charts).to_have_count(4)
    for key in ("capacity", "scaling", "az", "cost"):
        expect(page.locator(f'svg[data-chart="{key}"]')).to_be_visible()
    # the capacity chart, read in the browser: fleet-hours x price is the expected monthly cost
    fleet_hours = page.evaluate(
        """() => [...document.querySelectorAll('svg[data-chart="capacity"] rect.fleet')]
            .reduce((sum, r) => sum + (r.dataset.endH - r.dataset.startH) * r.dataset.fleet, 0)"""
    )
    price = answer["cost"]["usd_per_hour"] / answer["capacity"]["instances"]
    assert fleet_hours * 730 / 168 * price == pytest.approx(answer["cost"]["usd_per_month_expected"], rel=0.01)
    rules = page.locator("table.rules tbody tr")
    expect(rules).to_have_count(len(answer["explanation"]))
    expect(rules.first).to_contain_text(answer["explanation"][0]["rule_id"])
    expect(page.get_by_role("link", name="the audited decision as JSON")).to_have_attribute(
        "href", f"/v1/decisions/{decision_id}"
    )


def test_with_keys_sign_in_to_see_the_report(browser: Browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    key = new_key()
    entry = {"name": "reader", "sha256": hash_key(key), "scopes": ["decide", "audit:read"]}
    watch = Watch()
    with serve(tmp_path, api_keys=json.dumps([entry]), session_cookie_secure="0") as (base, _):
        request = urllib.request.Request(
            f"{base}/v1/recommendations",
            data=json.dumps(WORKED_EXAMPLE).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request) as response:
            decision_id = json.loads(response.read())["decision_id"]
        report = f"{base}/decisions/{decision_id}"

        anonymous = _context(browser, watch)
        page = anonymous.new_page()
        page.goto(report)
        expect(page).to_have_url(re.compile(r"/sign-in\?next="))  # refused without a session
        expect(page.locator("svg[data-chart]")).to_have_count(0)
        watch.audit(page)
        watch.expected_statuses.add(401)
        page.get_by_label("API key").fill("not-a-key-" + "x" * 40)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator('[id="api_key-error"]')).to_be_visible()
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(report)
        expect(page.locator("figure.chart svg[role=img]")).to_have_count(4)
        _check_report(page, base, decision_id, key)
        watch.audit(page)

        other = _context(browser, watch)  # another browser profile has no session
        stranger = other.new_page()
        stranger.goto(report)
        expect(stranger).to_have_url(re.compile(r"/sign-in"))

        page.get_by_role("button", name="Sign out (key:reader)").click()
        page.goto(report)
        expect(page).to_have_url(re.compile(r"/sign-in"))
        anonymous.close()
        other.close()
    watch.assert_clean()
