"""Connections to the audit store: the async engine and its pool for the two supported backends (Postgres via
asyncpg, SQLite via aiosqlite), and the read-snapshot and write-transaction scopes the services open on it.

Named ``connection`` rather than ``engine`` so it is not mistaken for the rules engine, ``service.engine``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from service.settings import Settings

__all__ = [
    "APPLICATION_NAME",
    "create_engine",
    "create_single_use_engine",
    "is_postgres_url",
    "is_sqlite_url",
    "read_snapshot",
    "sqlite_database_path",
    "write_transaction",
]

APPLICATION_NAME = "advisor"
DEFAULT_TIMEOUT_S = 5.0
# Statement timeout of one-off tools (migrations, `advisor audit verify`): a long backfill or walk must not time out.
NO_COMMAND_TIMEOUT = None


def is_sqlite_url(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_postgres_url(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def sqlite_database_path(url: str | URL) -> Path | None:
    """The file a SQLite URL points at, or None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_engine(settings: Settings) -> AsyncEngine:
    """The service's pooled engine for ``settings.database_url``.

    The caller owns it and must ``await engine.dispose()`` on shutdown.

    Postgres: a pool of ``db_pool_size`` connections (no overflow: the size is the hard cap per worker, so
    workers x db_pool_size can be sized against the server's ``max_connections``), waiting up to
    ``db_pool_timeout_s`` for a free one, pre-pinged (a connection the server dropped is replaced on checkout, so
    the service recovers by itself once the database is back), connecting within ``db_connect_timeout_s``, each
    statement answered within ``db_command_timeout_s`` (else ``TimeoutError``), and a session left idle inside a
    transaction for three times that ended by the server (so a vanished worker cannot hold locks).
    SQLite: WAL journal, ``synchronous=NORMAL``, foreign keys on, and a writer waits up to
    ``db_pool_timeout_s`` for the database lock (``busy_timeout``); the parent directory of the file is
    created if missing.
    """
    return _build(
        settings.database_url,
        pool_size=settings.db_pool_size,
        pool_timeout_s=settings.db_pool_timeout_s,
        connect_timeout_s=settings.db_connect_timeout_s,
        command_timeout_s=settings.db_command_timeout_s,
    )


def create_single_use_engine(
    database_url: str,
    *,
    connect_timeout_s: float = DEFAULT_TIMEOUT_S,
    busy_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> AsyncEngine:
    """An engine without a pool (each connection is really closed), for migrations and one-off tools."""
    return _build(
        database_url,
        pool_size=None,
        pool_timeout_s=busy_timeout_s,
        connect_timeout_s=connect_timeout_s,
        command_timeout_s=NO_COMMAND_TIMEOUT,
    )


def _build(
    database_url: str,
    *,
    pool_size: int | None,
    pool_timeout_s: float,
    connect_timeout_s: float,
    command_timeout_s: float | None,
) -> AsyncEngine:
    url = make_url(database_url)
    backend, driver = url.get_backend_name(), url.get_driver_name()
    pool_args: dict[str, Any] = (
        {"poolclass": NullPool}
        if pool_size is None
        else {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": pool_timeout_s}
    )
    if backend == "postgresql":
        if driver != "asyncpg":
            raise ValueError(f"Postgres URLs must use the asyncpg driver (postgresql+asyncpg://), got {url!r}")
        return create_async_engine(
            url,
            pool_pre_ping=True,
            connect_args={
                "timeout": connect_timeout_s,
                "command_timeout": command_timeout_s,
                "server_settings": _server_settings(command_timeout_s),
            },
            **pool_args,
        )
    if backend == "sqlite":
        if driver != "aiosqlite":
            raise ValueError(f"SQLite URLs must use the aiosqlite driver (sqlite+aiosqlite://), got {url!r}")
        path = sqlite_database_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if pool_size is not None and path is None:
            # In memory: SQLAlchemy's default pool (one shared connection) is the only one that works.
            pool_args = {}
        engine = create_async_engine(url, **pool_args)
        _install_sqlite_pragmas(engine, busy_timeout_ms=int(pool_timeout_s * 1000))
        return engine
    raise ValueError(f"unsupported database URL {url!r}: use postgresql+asyncpg:// or sqlite+aiosqlite://")


def _server_settings(command_timeout_s: float | None) -> dict[str, str]:
    settings = {"application_name": APPLICATION_NAME}
    if command_timeout_s is not None:
        # A client that vanishes mid-transaction (a partitioned or frozen worker) must not hold its locks (the audit
        # chain head's above all) until TCP keepalive notices: the server ends such a session after this long.
        settings["idle_in_transaction_session_timeout"] = str(int(command_timeout_s * 3 * 1000))
    return settings


def _install_sqlite_pragmas(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    operational_error = engine.dialect.loaded_dbapi.OperationalError

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            # This fails only while the file is not yet in WAL mode and another connection holds a lock:
            # SQLite then answers "database is locked" at once, without waiting. WAL is a persistent property
            # of the file, set by whichever connection gets there first; this one works either way.
            with contextlib.suppress(operational_error):
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()


@contextlib.asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that commits on success and rolls back on error, holding the write lock from its start.

    On SQLite the transaction opens with ``BEGIN IMMEDIATE``: it takes the database's write lock at once (others
    wait up to the busy timeout), so what it reads before writing cannot change under it. A deferred transaction
    that reads and then writes fails at once with "database is locked" if another connection wrote in between.
    On Postgres this is a plain ``engine.begin()``; rows to serialise on are locked explicitly
    (``SELECT ... FOR UPDATE``).
    """
    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            yield conn
        return
    async with engine.connect() as conn:
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()


@contextlib.asynccontextmanager
async def read_snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction in which every statement sees the same snapshot of the database; rolled back.

    Postgres: ``REPEATABLE READ READ ONLY``. SQLite: an explicit ``BEGIN`` (a WAL read transaction keeps the
    snapshot of its first read until it ends).
    """
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN")
        else:
            await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            await conn.begin()
        try:
            yield conn
        finally:
            await conn.rollback()
