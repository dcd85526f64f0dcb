"""`advisor audit archive`, `advisor audit verify --archives` and `advisor db downgrade` from the command line."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncEngine
from storedrows import append_decisions
from test_archive import made_at

from service.cli import main
from service.settings import get_settings

OLD = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def advisor(database_url: str, *args: str, **env: str) -> Result:
    def invoke() -> Result:
        get_settings.cache_clear()
        return CliRunner().invoke(main, list(args), env={"ADVISOR_DATABASE_URL": database_url, **env})

    return await asyncio.to_thread(invoke)


async def test_archive_then_verify_with_and_without_the_files(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with engine.begin() as conn:
        await append_decisions(conn, [made_at(OLD, n) for n in range(4)] + [made_at(datetime.now(UTC), 9)])
    target = tmp_path / "archive"
    archived = await advisor(database_url, "audit", "archive", "--to", str(target))  # keep 12 months: March 2025 goes
    assert archived.exit_code == 0, archived.output
    assert "archived decisions-2025-03.jsonl.gz: 4 decisions, sha256 " in archived.stdout
    assert archived.stdout.endswith(f"ok: 1 month(s) archived, 4 decisions, to {target}\n")
    assert (target / "decisions-2025-03.manifest.json").exists()

    live = await advisor(database_url, "audit", "verify")
    assert live.exit_code == 0, live.output
    assert live.stdout.startswith("ok: 1 decisions")
    whole = await advisor(database_url, "audit", "verify", "--archives", str(target))
    assert whole.exit_code == 0, whole.output
    assert whole.stdout.startswith("ok: 5 decisions")

    again = await advisor(database_url, "audit", "archive", "--to", str(target), "--before", "2025-04")
    assert again.stdout == f"ok: 0 month(s) archived, 0 decisions, to {target}\n"


async def test_archive_refuses_a_bad_or_current_month(engine: AsyncEngine, database_url: str, tmp_path: Path) -> None:
    bad = await advisor(database_url, "audit", "archive", "--to", str(tmp_path), "--before", "2025-13")
    assert bad.exit_code == 2
    assert "expected a month as YYYY-MM" in bad.output
    now = datetime.now(UTC)
    future = f"{now.year + 1}-01"
    refused = await advisor(database_url, "audit", "archive", "--to", str(tmp_path), "--before", future)
    assert refused.exit_code == 1
    assert "still take decisions" in refused.output


async def test_db_downgrade_is_refused_once_a_month_is_archived(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with engine.begin() as conn:
        await append_decisions(conn, [made_at(OLD, 0)])
    assert (await advisor(database_url, "audit", "archive", "--to", str(tmp_path))).exit_code == 0
    refused = await advisor(database_url, "db", "downgrade", "0008")
    assert refused.exit_code == 2
    assert "refusing to downgrade below 0009: 1 month(s) are archived" in refused.output
    unknown = await advisor(database_url, "db", "downgrade", "nonsense")
    assert unknown.exit_code == 2
