"""Debian's Chromium for the browser tests (never a downloaded browser); `advisor serve` comes from tests/served.py.

Without /usr/bin/chromium (or the playwright package) a browser test skips, unless ADVISOR_REQUIRE_BROWSER=1, then it
fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "need_browser", "require_chromium"]

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER_ENV = "ADVISOR_REQUIRE_BROWSER"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def need_browser(reason: str) -> None:
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_BROWSER_ENV}=1)")
    pytest.skip(f"{reason}; set {REQUIRE_BROWSER_ENV}=1 to make this a failure")


def require_chromium() -> Path:
    """Debian's Chromium and the playwright package, or a skip (a failure with ADVISOR_REQUIRE_BROWSER=1)."""
    if not CHROMIUM.exists():
        need_browser(f"Debian's Chromium is not installed at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need_browser("the playwright package is not installed")
    return CHROMIUM
