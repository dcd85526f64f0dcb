"""The alembic migrations on SQLite and Postgres."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from dbutil import connect, sqlite_url
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from service.db import metadata
from service.db.chain_store import _PG_APPEND_COLUMNS, PG_APPEND_ROW_TYPE
from service.db.connection import create_single_use_engine
from service.db.migrate import (
    MIGRATION_LOCK_KEY,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    is_up_to_date,
    missing_revisions,
    upgrade,
)
from service.db.partitions import include_object, is_partition_name

TABLES = {
    "alembic_version",
    "rulesets",
    "decisions",
    "ruleset_activations",
    "audit_chain_head",
    "audit_checkpoints",
    "idempotency_keys",
    "audit_documents",
    "audit_dictionaries",
    "audit_archives",
}


async def table_names(url: str) -> set[str]:
    engine = create_single_use_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
            return {name for name in names if not is_partition_name(name)}
    finally:
        await engine.dispose()


async def test_upgrade_creates_the_schema_and_is_idempotent(blank_database_url: str) -> None:
    url = blank_database_url
    assert head_revision() is not None
    assert await current_revision(url) is None
    assert not await is_up_to_date(url)

    await upgrade(url)
    assert await table_names(url) == TABLES
    assert await current_revision(url) == head_revision()
    assert await is_up_to_date(url)

    await upgrade(url)  # no-op
    assert await table_names(url) == TABLES
    assert await current_revision(url) == head_revision()


async def test_schema_matches_table_metadata(database_url: str) -> None:
    """The migrations and service/db/tables.py describe the same schema."""

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        return list(compare_metadata(context, metadata))

    engine = create_single_use_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_concurrent_upgrades_both_succeed(blank_database_url: str) -> None:
    await asyncio.gather(upgrade(blank_database_url), upgrade(blank_database_url))
    assert await current_revision(blank_database_url) == head_revision()
    assert await table_names(blank_database_url) == TABLES


async def test_upgrade_waits_for_the_advisory_lock(pg_database_url: str) -> None:
    await downgrade(pg_database_url)
    holder: asyncpg.Connection = await connect(pg_database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        task = asyncio.create_task(upgrade(pg_database_url))
        await asyncio.sleep(0.5)
        assert not task.done(), "upgrade ran while another migrator held the lock"
        assert await current_revision(pg_database_url) is None
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await asyncio.wait_for(task, timeout=30)
    finally:
        await holder.close()
    assert await current_revision(pg_database_url) == head_revision()


async def test_downgrade_drops_everything(database_url: str) -> None:
    await downgrade(database_url)
    assert await table_names(database_url) == {"alembic_version"}
    assert await current_revision(database_url) is None
    assert not await is_up_to_date(database_url)
    await upgrade(database_url)  # and back up again
    assert await table_names(database_url) == TABLES


async def test_downgrade_drops_the_postgres_trigger_function(pg_database_url: str) -> None:
    await downgrade(pg_database_url)
    conn = await connect(pg_database_url)
    try:
        query = "SELECT count(*) FROM pg_proc WHERE proname = 'decisions_append_only'"
        assert await conn.fetchval(query) == 0
    finally:
        await conn.close()


async def test_looking_at_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "missing.db"
    assert await current_revision(sqlite_url(path)) is None
    assert not await is_up_to_date(sqlite_url(path))
    assert not path.exists()


async def test_sqlite_upgrade_creates_the_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "advisor.db"
    await upgrade(sqlite_url(path))
    assert path.exists()
    assert await is_up_to_date(sqlite_url(path))


def test_standalone_alembic_finds_no_drift(tmp_path: Path) -> None:
    """env.py also works without a passed-in connection (alembic commands on `alembic_config(url)`)."""
    url = sqlite_url(tmp_path / "advisor.db")
    asyncio.run(upgrade(url))
    command.check(alembic_config(url))  # raises if tables.py has changes no migration covers


async def test_postgres_compresses_stored_json_with_lz4_and_downgrade_restores_the_default(
    pg_database_url: str,
) -> None:
    query = (
        "SELECT attname::text, attcompression::text FROM pg_attribute "
        "WHERE attrelid = 'decisions'::regclass AND attname IN ('profile', 'recommendation') ORDER BY attname"
    )
    # Since 0009 the texts are documents: those copied from before 0009 keep lz4 in TOAST.
    documents = (
        "SELECT attname::text, attcompression::text FROM pg_attribute "
        "WHERE attrelid = 'audit_documents'::regclass AND attname = 'body'"
    )
    conn = await connect(pg_database_url)
    try:
        available = await conn.fetchval(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        expected = "l" if available else ""  # 'l': lz4; '': the server's default_toast_compression
        assert [tuple(r) for r in await conn.fetch(documents)] == [("body", expected)]
        await downgrade(pg_database_url, "0008")
        assert [tuple(r) for r in await conn.fetch(query)] == [("profile", expected), ("recommendation", expected)]
        await downgrade(pg_database_url, "0003")
        assert [tuple(r) for r in await conn.fetch(query)] == [("profile", ""), ("recommendation", "")]
        await upgrade(pg_database_url)
        assert [tuple(r) for r in await conn.fetch(documents)] == [("body", expected)]
    finally:
        await conn.close()


async def test_postgres_append_row_types_match_what_the_writers_send_and_downgrade_drops_them(
    pg_database_url: str,
) -> None:
    """The audit writer sends each decision as a tuple in the order of ``_PG_APPEND_COLUMNS``; its type must agree
    with the columns. The types of the releases before stay; downgrading below 0009 drops this one."""
    attributes = (
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
        "(SELECT typrelid FROM pg_type WHERE typname = $1) AND attnum > 0 ORDER BY attnum"
    )
    # Each attribute must take the column's values without loss: the same type, or text for the string columns.
    columns = (
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'decisions'::regclass AND attnum > 0 AND NOT attisdropped"
    )
    older = ("decision_append_row_v3", "decision_append_row_v2", "decision_append_row")
    conn = await connect(pg_database_url)
    try:
        column_types = {row[0]: row[1] for row in await conn.fetch(columns)}
        found = [tuple(r) for r in await conn.fetch(attributes, PG_APPEND_ROW_TYPE)]
        assert tuple(name for name, _ in found) == _PG_APPEND_COLUMNS
        for name, type_ in found:
            expected = column_types[name]
            assert type_ == expected or (type_ == "text" and expected.startswith(("character", "text"))), name
        previous = {name: [tuple(r) for r in await conn.fetch(attributes, name)] for name in older}
        assert all(previous.values())

        await downgrade(pg_database_url, "0008")
        assert await conn.fetch(attributes, PG_APPEND_ROW_TYPE) == []
        assert {name: [tuple(r) for r in await conn.fetch(attributes, name)] for name in older} == previous
        await upgrade(pg_database_url)
        assert [tuple(r) for r in await conn.fetch(attributes, PG_APPEND_ROW_TYPE)] == found
    finally:
        await conn.close()


async def test_missing_revisions_lists_what_the_database_lacks_oldest_first(blank_database_url: str) -> None:
    everything = await missing_revisions(blank_database_url)
    assert everything[0] == "0001" and everything[-1] == head_revision()
    await upgrade(blank_database_url, "0003")
    assert await missing_revisions(blank_database_url) == everything[3:]
    await upgrade(blank_database_url)
    assert await missing_revisions(blank_database_url) == []
