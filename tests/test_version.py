"""The release's version has one source, service/__init__.py: the package metadata reads it from there."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import service

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_version_is_read_from_service_init() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"] == {"path": "service/__init__.py"}
    # hatch's default pattern: the one `__version__ = "..."` assignment in that file.
    found = re.findall(r'^__version__\s*=\s*"([^"]+)"$', (ROOT / "service" / "__init__.py").read_text(), re.MULTILINE)
    assert found == [service.__version__]
