"""`advisor serve` in a child process, for tests that need a real server: requests that overlap in time (the
in-process test client runs one request at a time), real sockets and real headers."""

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

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60

__all__ = ["free_port", "serve", "serve_command"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command() -> list[str]:
    script = Path(sys.executable).parent / "advisor"
    if script.exists():
        return [str(script), "serve"]
    # Not installed as a console script (e.g. a bare checkout on PYTHONPATH): the same entry point.
    return [sys.executable, "-c", "from service.cli import main; main()", "serve"]


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
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
    pytest.fail(f"`advisor serve` did not answer {url} in {START_TIMEOUT_S}s:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


@contextmanager
def serve(tmp_path: Path, **settings: str) -> Iterator[tuple[str, Path]]:
    """Base URL of `advisor serve` on a free loopback port and its log file; a fresh SQLite database in
    ``tmp_path`` unless ``settings`` (``ADVISOR_*`` names without the prefix, lower case) say otherwise."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADVISOR_")}
    env |= {
        "ADVISOR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
        "ADVISOR_MIGRATE_ON_START": "1",
        "ADVISOR_HOST": "127.0.0.1",
        "ADVISOR_PORT": str(port),
        "ADVISOR_RULES_DIR": str(ROOT / "rules"),
        "ADVISOR_LOG_LEVEL": "WARNING",
    }
    env |= {f"ADVISOR_{name.upper()}": value for name, value in settings.items()}
    log = tmp_path / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(serve_command(), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(process, f"{base}/healthz", log)
        yield base, log
    finally:
        _stop(process)
