"""Commands that only read the audit store, run outside the repository: they never create a database, and a missing
or unmigrated one is one line and exit 2; a missing rules directory is named."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from dbutil import blank_postgres_database, connect
from sqlalchemy.engine import make_url

from service.cli import main
from service.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
RULES = str(ROOT / "rules")
COMMANDS = {
    "rules-impact": ["rules", "impact", "--candidate", RULES],
    "audit-verify": ["audit", "verify"],
    "rules-diff-stored-version": ["rules", "diff", "2026.1.0", RULES],
}
READ_ONLY = [pytest.param(args, id=name) for name, args in COMMANDS.items()]


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def advisor(*args: str, database_url: str | None = None) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(main, list(args), env={"ADVISOR_DATABASE_URL": database_url})


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("args", READ_ONLY)
def test_in_an_empty_directory_nothing_is_created(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_error_line(advisor(*args))  # the default database, ./advisor.db
    assert f"no database at {tmp_path / 'advisor.db'}" in line
    assert "advisor db upgrade" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", READ_ONLY)
def test_a_missing_file_in_a_missing_directory_is_not_created(args: list[str], tmp_path: Path) -> None:
    database = tmp_path / "nowhere" / "audit.db"
    line = _one_error_line(advisor(*args, database_url=f"sqlite+aiosqlite:///{database}"))
    assert f"no database at {database}" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", READ_ONLY)
def test_an_unmigrated_sqlite_database_is_named(args: list[str], tmp_path: Path) -> None:
    database = tmp_path / "other.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    line = _one_error_line(advisor(*args, database_url=f"sqlite+aiosqlite:///{database}"))
    assert "is not an audit database (no table " in line and "advisor db upgrade" in line


@pytest.mark.postgres
async def test_postgres_unmigrated_or_missing() -> None:
    async with blank_postgres_database() as blank:
        for args in COMMANDS.values():
            line = _one_error_line(await asyncio.to_thread(advisor, *args, database_url=blank))
            assert "is not an audit database (no table rulesets" in line
        missing = make_url(blank).set(database="advisor_never_created").render_as_string(hide_password=False)
        for args in COMMANDS.values():
            line = _one_error_line(await asyncio.to_thread(advisor, *args, database_url=missing))
            assert "cannot connect to" in line and "advisor_never_created" in line and "does not exist" in line
        conn = await connect(blank)
        try:
            assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = 'advisor_never_created'") == 0
            tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()
        assert tables == 0


def test_a_missing_rules_directory_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-rules"
    check = CliRunner().invoke(main, ["rules", "check", str(missing)])
    assert check.exit_code == 1
    assert f"{missing}: no such rules directory ({missing})" in check.stderr
    profile = tmp_path / "profile.json"
    profile.write_text("{}")
    recommend = CliRunner().invoke(main, ["recommend", str(profile), "--rules", str(missing)])
    assert recommend.exit_code == 1
    assert f"no such rules directory ({missing})" in recommend.stderr
    activate = CliRunner().invoke(main, ["rules", "activate", str(missing)])
    assert activate.exit_code == 1
    assert f"no such rules directory ({missing})" in activate.stderr
    assert not (tmp_path / "advisor.db").exists()
