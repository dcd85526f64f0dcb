"""Finding 10 of the security review: the README, the settings and the code disagreed on what `admin` covers.
Now the README's scope table is checked against the scope each route declares."""

from __future__ import annotations

import re
from pathlib import Path

from service.api.auth import REQUIRED_SCOPE
from service.app import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _readme_scopes() -> dict[str, str]:
    """Scope -> the operations cell of the README's access-control table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Access control", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z:]+)` \| (.+) \|$", section, flags=re.MULTILINE))


def _documented(cell: str, method: str, path: str) -> bool:
    """Whether the cell names ``method path``: exactly, or by a prefix ending in `…`."""
    for named in re.findall(r"`([A-Z]+) (/[^`]*)`", cell):
        verb, documented = named
        if verb == method and (documented == path or (documented.endswith("…") and path.startswith(documented[:-1]))):
            return True
    return False


def test_the_readme_names_every_operation_under_the_scope_it_needs(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", api_keys=()))
    table = _readme_scopes()
    assert set(table) == {"decide", "audit:read", "admin"}
    checked = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            scope = handler.opt.get(REQUIRED_SCOPE)
            if scope is None:
                continue
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
                assert _documented(table[scope], method, path), f"{method} {path} needs {scope}: not in README"
                others = [s for s in table if s != scope and _documented(table[s], method, path)]
                assert not others, f"{method} {path} is listed under {others} too"
                checked += 1
    assert checked >= 10
