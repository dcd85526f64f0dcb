"""The import rules of ARCHITECTURE.md, checked on the source (static imports only).

Every module under ``service/`` belongs to one layer of ARCHITECTURE.md's table. Each layer lists the parts of the
service it may import (anything else of ``service`` is refused, so a new dependency between layers is a decision made
here and in ARCHITECTURE.md, not an accident) and the outside packages it must not import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"

# What the engine must not touch: it is pure (no I/O, no clock, no randomness).
IO_MODULES = ("time", "datetime", "random", "os", "socket", "asyncio", "uuid", "pathlib", "subprocess")
# The observability modules that services call through one-line hooks; they import nothing of the service.
OBSERVABILITY_HOOKS = (
    "service.observability.metrics",
    "service.observability.logging",
    "service.observability.tracing",
    "service.observability.outages",
)


@dataclass(frozen=True)
class Layer:
    paths: tuple[str, ...]  # a folder under service/ (ending in "/") or a module file
    may: tuple[str, ...]  # the parts of ``service`` it may import besides itself ("*": all of them)
    never: tuple[str, ...] = ()  # outside packages it must not import


LAYERS: dict[str, Layer] = {
    "package": Layer(("__init__.py",), may=()),
    "settings": Layer(("settings.py",), may=()),
    "progress": Layer(("progress.py",), may=(), never=("litestar", "sqlalchemy")),
    "contract": Layer(("contract/",), may=(), never=("litestar", "sqlalchemy", "pydantic")),
    "rulebook": Layer(("rulebook/",), may=("service.contract",), never=("litestar", "sqlalchemy", "msgspec")),
    "engine": Layer(
        ("engine/",), may=("service.contract", "service.rulebook"), never=("litestar", "sqlalchemy", *IO_MODULES)
    ),
    "db": Layer(("db/",), may=("service.settings",), never=("litestar",)),
    "export": Layer(("export/",), may=(), never=("litestar", "sqlalchemy", "msgspec")),
    "observability": Layer(("observability/",), may=(), never=("litestar", "sqlalchemy")),
    "services": Layer(
        ("services/",),
        may=(
            "service.__version__",
            "service.contract",
            "service.rulebook",
            "service.engine",
            "service.export",
            "service.db",
            "service.settings",
            *OBSERVABILITY_HOOKS,
        ),
        never=("litestar",),
    ),
    "report": Layer(
        ("report/",),
        may=("service.contract", "service.rulebook", "service.engine"),
        never=("litestar", "sqlalchemy", "msgspec"),
    ),
    "api": Layer(
        ("api/",),
        may=(
            "service.contract",
            "service.rulebook",
            "service.engine",
            "service.report",
            "service.export",
            "service.services",
            "service.settings",
        ),
        never=("sqlalchemy",),
    ),
    "app": Layer(
        ("app.py", "openapi.py"),
        may=(
            "service.app",
            "service.api",
            "service.services",
            "service.engine",
            "service.db.connection",
            "service.observability",
            "service.settings",
        ),
        never=("sqlalchemy",),
    ),
    "cli": Layer(("cli.py", "rules_cli.py", "audit_cli.py", "loadtests_cli.py", "export_cli.py"), may=("*",)),
}


@dataclass(frozen=True)
class Allowance:
    may: tuple[str, ...] = ()  # parts of ``service`` this module may import beyond its layer's
    exempt: tuple[str, ...] = ()  # outside packages of its layer's ``never`` that this module may import


# Per-module allowances, each with its reason.
EXTRA: dict[str, Allowance] = {
    # The rule-test runner reads test files from disk: it is tooling beside the engine, not the engine.
    "engine/casetests.py": Allowance(exempt=("pathlib",)),
    # The plugin wires observability into the app (a Litestar plugin): request ids and the caller come from the
    # API, the live values (queue, ruleset) from the services, and it reads the SQLAlchemy pool's figures.
    "observability/plugin.py": Allowance(
        may=("service.api.auth", "service.api.context", "service.services", "service.settings"),
        exempt=("litestar", "sqlalchemy"),
    ),
}


def _imports(source: str) -> set[str]:
    """Every module or name imported at the top level of the package: ``from a.b import c`` gives ``a.b.c``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer_of(relative: str) -> str:
    owners = [
        layer
        for layer, spec in LAYERS.items()
        for path in spec.paths
        if (relative.startswith(path) if path.endswith("/") else relative == path)
    ]
    assert len(owners) == 1, f"service/{relative} belongs to {owners or 'no layer'}: add it to ARCHITECTURE.md"
    return owners[0]


def _violations(relative: str, source: str) -> list[str]:
    """The imports of the module at ``service/<relative>`` that its layer does not allow."""
    layer = LAYERS[_layer_of(relative)]
    extra = EXTRA.get(relative, Allowance())
    # A folder's modules may import each other; the modules of a layer made of files may not.
    own = tuple("service." + path.removesuffix("/") for path in layer.paths if path.endswith("/"))
    allowed = (*layer.may, *extra.may, *own)
    banned = tuple(name for name in layer.never if name not in extra.exempt)

    def refused(name: str) -> bool:
        if _within(name, "service"):
            return "*" not in allowed and not any(_within(name, ok) for ok in allowed)
        return any(_within(name, ban) for ban in banned)

    return [name for name in sorted(_imports(source)) if refused(name)]


def _modules() -> list[str]:
    return sorted(path.relative_to(SERVICE).as_posix() for path in SERVICE.rglob("*.py"))


@pytest.mark.parametrize("relative", _modules())
def test_layer_imports(relative: str) -> None:
    bad = _violations(relative, (SERVICE / relative).read_text())
    assert bad == [], f"service/{relative} imports {bad}, which ARCHITECTURE.md forbids for {_layer_of(relative)}"


def test_every_layer_has_modules() -> None:
    owned = {_layer_of(relative) for relative in _modules()}
    assert owned == set(LAYERS)


@pytest.mark.parametrize(
    ("relative", "line"),
    [
        ("api/rulesets.py", "from service.db.repository import RulesetRow"),
        ("api/rulesets.py", "import sqlalchemy"),
        ("engine/core.py", "from service.services.audit import AuditWriter"),
        ("engine/core.py", "import time"),
        ("report/model.py", "from service.services.audit import AuditReader"),
        ("report/render.py", "import litestar"),
        ("db/tables.py", "from service.engine import evaluate"),
        ("services/decisions.py", "from service.api.auth import Principal"),
        ("observability/metrics.py", "from service.settings import Settings"),
        ("app.py", "from service.db.repository import AuditRepository"),
    ],
)
def test_a_forbidden_import_is_caught(relative: str, line: str) -> None:
    """The checker itself: each of these lines, added to that module, breaks a rule of ARCHITECTURE.md."""
    assert _violations(relative, line) != []


def test_the_cli_may_import_anything() -> None:
    assert _violations("rules_cli.py", "from service.db.repository import AuditRepository") == []
