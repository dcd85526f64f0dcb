"""create_engine: connection settings on each backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from dbutil import sqlite_url
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import create_engine
from service.settings import Settings


async def test_postgres_connection_settings(pg_engine: AsyncEngine) -> None:
    assert pg_engine.pool.size() == Settings().db_pool_size  # type: ignore[attr-defined]
    async with pg_engine.connect() as conn:
        assert await conn.scalar(text("SHOW application_name")) == "advisor"
        assert await conn.scalar(text("SHOW idle_in_transaction_session_timeout")) == "30s"  # 3 x command timeout


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_engine(Settings(database_url=sqlite_url(tmp_path / "x" / "y.db"), db_pool_timeout_s=2.5))
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await conn.scalar(text("PRAGMA synchronous")) == 1  # NORMAL
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
            assert await conn.scalar(text("PRAGMA busy_timeout")) == 2500
    finally:
        await engine.dispose()
    assert (tmp_path / "x" / "y.db").exists()


@pytest.mark.parametrize(
    "url",
    [
        "mysql+aiomysql://u@h/db",
        "postgresql+psycopg://postgres@127.0.0.1/test",
        "sqlite:///plain-pysqlite.db",
    ],
)
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        create_engine(Settings(database_url=url))


async def test_sqlite_connects_while_a_fresh_file_is_locked(tmp_path: Path) -> None:
    """Switching a fresh file to WAL while another connection writes fails at once in SQLite; not fatal."""
    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (1)")
        engine = create_engine(Settings(database_url=sqlite_url(path)))
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(text("PRAGMA journal_mode")) == "delete"
                assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
            holder.execute("COMMIT")
            await engine.dispose()
            async with engine.connect() as conn:  # the next connection switches the file over
                assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
        finally:
            await engine.dispose()
    finally:
        holder.close()
