"""The import rules of ARCHITECTURE.md, checked on the source (static imports only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "contract": (
        "litestar",
        "sqlalchemy",
        "service.db",
        "service.api",
        "service.engine",
        "service.rulebook",
        "pydantic",
    ),
    "rulebook": ("litestar", "sqlalchemy", "service.db", "service.api", "service.engine", "msgspec"),
    "engine": (
        "litestar",
        "sqlalchemy",
        "service.db",
        "service.api",
        "service.audit",
        "service.decisions",
        "service.registry",
        "time",
        "datetime",
        "random",
        "os",
        "socket",
        "asyncio",
        "uuid",
        "pathlib",
        "subprocess",
    ),
    "db": (
        "litestar",
        "service.api",
        "service.engine",
        "service.rulebook",
        "service.audit",
        "service.decisions",
    ),
    "api": ("sqlalchemy", "service.db.connection", "service.db.tables"),
}
# The rule-test runner reads test files from disk: it is tooling beside the engine, not the engine.
EXEMPT = {"engine/casetests.py": ("pathlib",)}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _cases() -> list[tuple[str, Path]]:
    return [(layer, path) for layer in FORBIDDEN for path in sorted((SERVICE / layer).rglob("*.py"))]


@pytest.mark.parametrize(("layer", "path"), _cases(), ids=lambda v: str(v).rsplit("service/", 1)[-1])
def test_layer_imports(layer: str, path: Path) -> None:
    exempt = EXEMPT.get(path.relative_to(SERVICE).as_posix(), ())
    bad = sorted(
        name
        for name in _imports(path)
        for banned in FORBIDDEN[layer]
        if (name == banned or name.startswith(banned + ".")) and banned not in exempt
    )
    assert bad == [], f"{path.relative_to(SERVICE)} imports {bad}, which ARCHITECTURE.md forbids for {layer}"


def test_every_layer_has_modules() -> None:
    for layer in FORBIDDEN:
        assert list((SERVICE / layer).rglob("*.py")), layer
