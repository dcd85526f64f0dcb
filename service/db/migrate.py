"""Schema migrations (alembic, configured in code: no ``alembic.ini``).

``upgrade`` is safe to run from several processes at once: on Postgres it holds a session-level advisory
lock on a dedicated connection while migrating; on SQLite the migration runs in one ``BEGIN IMMEDIATE``
transaction, which takes the database's write lock (others wait up to the busy timeout, then see the schema
already at head).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.connection import create_single_use_engine, is_postgres_url, sqlite_database_path
from service.db.grants import grant_service_role
from service.db.partitions import ensure_months, is_partitioned
from service.settings import get_settings

__all__ = [
    "MIGRATION_LOCK_KEY",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "is_up_to_date",
    "missing_revisions",
    "upgrade",
]

# Month partitions kept ready beyond the current one unless ADVISOR_AUDIT_PARTITION_MONTHS_AHEAD says otherwise.
MONTHS_AHEAD_DEFAULT = 12
# Key of the Postgres advisory lock serialising migrations (first 8 bytes of sha256(b"advisor:migrations")).
MIGRATION_LOCK_KEY = 4071953280453403638

# How long an SQLite migrator waits for another one's write lock.
SQLITE_MIGRATION_BUSY_TIMEOUT_S = 60.0


def alembic_config(database_url: str | None = None, migrations_dir: Path | None = None) -> Config:
    """An alembic ``Config`` for the migrations in ``migrations_dir`` (default: the settings' ``migrations_dir``, the
    ones shipped with this code), e.g. for ``alembic.command.revision``.

    With ``database_url``, env.py can also connect by itself (standalone use, no migration lock).
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir or get_settings().migrations_dir))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(rev)s_%%(slug)s")
    config.set_main_option("timezone", "UTC")
    if database_url is not None:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision(migrations_dir: Path | None = None) -> str | None:
    """The newest revision in ``migrations/versions``."""
    return _scripts(migrations_dir).get_current_head()


async def upgrade(
    database_url: str,
    revision: str = "head",
    *,
    migrations_dir: Path | None = None,
    service_role: str | None = None,
    partition_months_ahead: int = MONTHS_AHEAD_DEFAULT,
) -> None:
    """``alembic upgrade <revision>`` on ``database_url``; a no-op when already there.

    ``service_role`` (Postgres only): then, in the same transaction, grant that role what the running service needs
    and nothing more (``service.db.grants``), whether or not a migration ran, so every upgrade covers new tables.
    Postgres, once the audit tables are partitioned (0009): the month partitions up to ``partition_months_ahead``
    months ahead are created in the same transaction (``service.db.partitions``).
    """
    if service_role is not None and not is_postgres_url(database_url):
        raise ValueError("a service role needs Postgres: SQLite has no roles (unset ADVISOR_DATABASE_SERVICE_ROLE)")

    def run(connection: Connection) -> None:
        config = alembic_config(migrations_dir=migrations_dir)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    await _run_locked(database_url, run, service_role=service_role, months_ahead=partition_months_ahead)


async def downgrade(database_url: str, revision: str = "base", *, migrations_dir: Path | None = None) -> None:
    """``alembic downgrade <revision>`` on ``database_url`` (``base`` drops everything)."""

    def run(connection: Connection) -> None:
        config = alembic_config(migrations_dir=migrations_dir)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    await _run_locked(database_url, run)


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None for an empty (or, for SQLite, missing) database."""
    heads = await _current_heads(database_url)
    if len(heads) > 1:
        raise RuntimeError(f"database has several alembic heads: {sorted(heads)}")
    return next(iter(heads), None)


async def is_up_to_date(database_url: str, *, migrations_dir: Path | None = None) -> bool:
    """Whether the database is at the newest revision of this code."""
    expected = set(_scripts(migrations_dir).get_heads())
    return await _current_heads(database_url) == expected


async def missing_revisions(database_url: str, *, migrations_dir: Path | None = None) -> list[str]:
    """This code's migrations the database has not had, oldest first.

    Empty when the database is at this code's head, or at a revision this code does not know: a newer release
    migrated it, and a release must run on the schema of the next one (deploy/README.md), so that is no reason to
    refuse. An empty database lacks them all.
    """
    script = _scripts(migrations_dir)
    lower = await current_revision(database_url) or "base"
    known = {revision.revision for revision in script.walk_revisions()}
    if lower != "base" and lower not in known:
        return []
    return [revision.revision for revision in script.iterate_revisions("heads", lower)][::-1]


def _scripts(migrations_dir: Path | None) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(migrations_dir=migrations_dir))


async def _current_heads(database_url: str) -> set[str]:
    if not is_postgres_url(database_url):
        path = sqlite_database_path(database_url)
        if path is not None and not path.exists():
            return set()  # don't create the file just to look at it

    def heads(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    engine = create_single_use_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(heads)
    finally:
        await engine.dispose()


async def _run_locked(
    database_url: str, run: Callable[[Connection], None], *, service_role: str | None = None, months_ahead: int = 0
) -> None:
    if is_postgres_url(database_url):
        engine = create_single_use_engine(database_url)
        try:
            await _run_postgres(engine, run, service_role, months_ahead)
        finally:
            await engine.dispose()
    else:
        engine = create_single_use_engine(database_url, busy_timeout_s=SQLITE_MIGRATION_BUSY_TIMEOUT_S)
        try:
            await _run_sqlite(engine, run)
        finally:
            await engine.dispose()


async def _run_postgres(
    engine: AsyncEngine, run: Callable[[Connection], None], service_role: str | None, months_ahead: int = 0
) -> None:
    lock = {"key": MIGRATION_LOCK_KEY}
    # The lock lives on its own connection (session-level, outside any transaction) for the whole migration,
    # so replicas starting together run one after another; the losers then find the schema at head. If this
    # process dies the server ends the session and the lock goes with it.
    async with engine.connect() as lock_connection:
        await lock_connection.execute(text("SELECT pg_advisory_lock(:key)"), lock)
        await lock_connection.commit()
        try:
            async with engine.begin() as connection:  # DDL is transactional: all or nothing
                await connection.run_sync(run)
                if months_ahead and await is_partitioned(connection):
                    await ensure_months(connection, now=datetime.now(UTC), ahead=months_ahead)
                if service_role is not None:  # with the migrations: the grants cover every table they made
                    await grant_service_role(connection, service_role)
        finally:
            # Closing the (unpooled) connection would release the lock too; unlock explicitly when we still
            # can.
            with contextlib.suppress(Exception):
                await lock_connection.execute(text("SELECT pg_advisory_unlock(:key)"), lock)
                await lock_connection.commit()


async def _run_sqlite(engine: AsyncEngine, run: Callable[[Connection], None]) -> None:
    async with engine.connect() as connection:
        # pysqlite would otherwise run the DDL outside any transaction; BEGIN IMMEDIATE makes the migration
        # atomic and takes the write lock up front, so concurrent migrators queue up instead of
        # interleaving.
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            await connection.run_sync(run)
        except BaseException:
            await connection.rollback()
            raise
        await connection.commit()
