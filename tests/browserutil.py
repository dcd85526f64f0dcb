"""Running `advisor serve` and Debian's Chromium for the browser tests (never a downloaded browser).

Without /usr/bin/chromium (or the playwright package) a browser test skips, unless ADVISOR_REQUIRE_BROWSER=1, then it
fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "ROOT", "need_browser", "require_chromium", "serving"]

ROOT = Path(__file__).resolve().parents[1]
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
SERVER_START_TIMEOUT_S = 60.0


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_command() -> list[str]:
    script = Path(sys.executable).parent / "advisor"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-c", "from service.cli import main; main()", "serve"]


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`advisor serve` exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(
        f"`advisor serve` did not answer {url} in {SERVER_START_TIMEOUT_S}s:\n{log.read_text(errors='replace')}"
    )


@contextmanager
def serving(directory: Path, **settings: str) -> Iterator[str]:
    """`advisor serve` on loopback on a fresh SQLite database in ``directory``, with these ADVISOR_* settings
    (lower-case names without the prefix); yields its base URL."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADVISOR_")}
    env |= {
        "ADVISOR_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'a.db'}",
        "ADVISOR_MIGRATE_ON_START": "1",
        "ADVISOR_HOST": "127.0.0.1",
        "ADVISOR_PORT": str(port),
        "ADVISOR_RULES_DIR": str(ROOT / "rules"),
        "ADVISOR_LOG_LEVEL": "WARNING",
    }
    env |= {f"ADVISOR_{name.upper()}": value for name, value in settings.items()}
    log = directory / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(_serve_command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(process, f"{base}/healthz", log)
        yield base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()
