"""The wheel runs anywhere.

Built from this checkout and installed (``--no-deps``) into a fresh virtual environment that sees this environment's
packages but not the checkout, it must run ``advisor db upgrade``, ``advisor recommend`` and ``advisor serve`` from an
empty directory, against SQLite (the default ``./advisor.db``) and Postgres: the migrations and the default ruleset
travel inside the wheel. About 10 s: the wheel and the environment are made once for the module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from profiles import WORKED_EXAMPLE

from service.rulebook.loader import load_ruleset
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("migrations", "rules")  # top-level directories the wheel carries under service/_data/
READY_WITHIN_S = 30.0


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path  # the environment's scripts: advisor, python
    logs: Path  # outside the empty working directories


def _run(
    command: list[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None
) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _test_environment_packages() -> list[str]:
    return [entry for entry in sys.path if Path(entry).name in {"site-packages", "dist-packages"}]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(base / "dist")]
    if importlib.util.find_spec("hatchling") is not None:
        build.append("--no-build-isolation")  # the dev environment has the build backend: nothing to download
    _run([*build, str(ROOT)])
    (wheel,) = (base / "dist").glob("advisor-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel])
    # Then this environment's packages (the dependencies) as plain path entries, after the venv's own: their .pth
    # files are not processed, among them the editable install's, which would put the checkout on sys.path.
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip()
    Path(purelib, "advisor-test-environment.pth").write_text("\n".join(_test_environment_packages()) + "\n")
    (base / "logs").mkdir()
    return Installed(wheel=wheel, bin=venv / "bin", logs=base / "logs")


def _environment(installed: Installed, **settings: str) -> dict[str, str]:
    """This process's environment without any setting or Python path of its own, plus ``settings``."""
    dropped = ("ADVISOR_", "PYTHONPATH", "VIRTUAL_ENV", "PROMETHEUS_MULTIPROC_DIR", "OTEL_")
    environment = {name: value for name, value in os.environ.items() if not name.startswith(dropped)}
    environment["PATH"] = f"{installed.bin}{os.pathsep}{environment.get('PATH', '')}"
    return environment | settings


def _expected_ruleset() -> dict[str, str]:
    shipped = load_ruleset(ROOT / "rules")
    return {"version": shipped.version, "sha256": shipped.sha256}


def test_a_checkout_uses_its_own_migrations_and_rules() -> None:
    """Not installed from a wheel (the tests, an editable install), the defaults are the checkout's directories."""
    settings = Settings()
    assert (settings.migrations_dir, settings.rules_dir) == (ROOT / "migrations", ROOT / "rules")


def test_the_wheel_carries_the_migrations_and_the_default_ruleset(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        packed = {name: archive.read(name) for name in archive.namelist() if name.startswith("service/_data/")}
    sources = {
        f"service/_data/{path.relative_to(ROOT).as_posix()}": path.read_bytes()
        for top in SHIPPED
        for path in sorted((ROOT / top).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert sorted(packed) == sorted(sources)
    assert packed == sources


def test_the_installed_package_is_the_wheel_and_finds_its_data_there(installed: Installed, tmp_path: Path) -> None:
    code = "import service, service.settings as s; c = s.Settings(); "
    code += "print(service.__file__, c.migrations_dir, c.rules_dir)"
    shown = _run([installed.bin / "python", "-c", code], cwd=tmp_path, env=_environment(installed)).split()
    venv = installed.bin.parent
    package, migrations, rules = (Path(p) for p in shown)
    assert package.is_relative_to(venv) and package.parent.name == "service", shown
    assert (migrations, rules) == (package.parent / "_data" / "migrations", package.parent / "_data" / "rules")
    assert list(tmp_path.iterdir()) == []


def test_the_installed_wheel_runs_from_an_empty_directory(
    installed: Installed, blank_database_url: str, tmp_path: Path
) -> None:
    """`db upgrade`, `recommend` and `serve` with nothing but the wheel: SQLite at its default (./advisor.db in the
    working directory), or a blank Postgres database."""
    sqlite = blank_database_url.startswith("sqlite")
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = _environment(installed, **({} if sqlite else {"ADVISOR_DATABASE_URL": blank_database_url}))
    advisor = installed.bin / "advisor"

    assert "latest migration" in _run([advisor, "db", "upgrade"], cwd=workdir, env=env)
    printed = _run([advisor, "recommend", "-"], cwd=workdir, env=env, stdin=json.dumps(WORKED_EXAMPLE))
    recommendation = json.loads(printed)
    assert recommendation["capacity"]["base_instances"] == 11
    assert recommendation["ruleset"] == _expected_ruleset()

    with _Serving(installed, workdir, env) as base:
        answer = httpx.post(f"{base}/v1/recommendations", json=WORKED_EXAMPLE, timeout=10)
        assert answer.status_code == 201, answer.text
        assert answer.json()["ruleset"] == _expected_ruleset()

    left = {path.name for path in workdir.iterdir()} - {"advisor.db-wal", "advisor.db-shm"}
    assert left == ({"advisor.db"} if sqlite else set())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Serving:
    """`advisor serve` started in ``workdir``; ``with`` yields its base URL once /readyz answers 200, then stops it
    with SIGTERM and expects a graceful exit (uvicorn ends by re-raising the signal it handled)."""

    def __init__(self, installed: Installed, workdir: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.log = installed.logs / f"serve-{self.port}.log"
        self.command = [str(installed.bin / "advisor"), "serve", "--port", str(self.port)]
        self.workdir, self.env = workdir, env

    def __enter__(self) -> str:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"advisor serve exited {self.process.returncode}:\n{self._output()}"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    return base
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self._stop()
        pytest.fail(f"advisor serve not ready within {READY_WITHIN_S} s:\n{self._output()}")

    def __exit__(self, *exc: object) -> None:
        code = self._stop()
        assert code in {0, -signal.SIGTERM}, f"advisor serve exited {code} on SIGTERM:\n{self._output()}"
        assert "Application shutdown complete" in self._output()

    def _stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=15)

    def _output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]
