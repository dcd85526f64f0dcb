"""metrics, logging, tracing and outages are called from every layer above the engine: they import nothing of it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "service" / "observability"
FORBIDDEN = ("service", "litestar", "sqlalchemy")


@pytest.mark.parametrize("module", ["__init__.py", "metrics.py", "logging.py", "tracing.py", "outages.py"])
def test_hooks_import_nothing_of_the_service(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert sorted(n for n in names for f in FORBIDDEN if n == f or n.startswith(f + ".")) == []
