"""Opening the audit store for commands that only read it (``rules impact``, ``rules diff``, ``audit verify``).

They never create a database: connecting to a SQLite file that does not exist would create an empty one, so a
missing file, an unreachable server and a schema without the store's tables are each ``DatabaseNotReady``, one line
that names the database and what to do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.connection import create_single_use_engine, is_sqlite_url, sqlite_database_path

__all__ = ["STORE_TABLES", "DatabaseNotReady", "existing_database", "one_line", "shown_url"]

STORE_TABLES = ("rulesets", "decisions", "audit_chain_head")


class DatabaseNotReady(Exception):
    """The database a read-only command was pointed at is missing, unreachable or not migrated (one line)."""


def shown_url(database_url: str) -> str:
    """The URL as it may be printed: without its password."""
    return make_url(database_url).render_as_string(hide_password=True)


@asynccontextmanager
async def existing_database(database_url: str, tables: Iterable[str] = STORE_TABLES) -> AsyncIterator[AsyncEngine]:
    """An engine on ``database_url`` once it is known to exist and hold ``tables``; disposed on exit.

    Raises DatabaseNotReady when the SQLite file is missing (nothing is created), the server does not answer or
    refuses the connection, or a table is missing (the database was never migrated).
    """
    where = shown_url(database_url)
    if is_sqlite_url(database_url):
        path = sqlite_database_path(database_url)
        if path is not None and not path.is_file():
            raise DatabaseNotReady(
                f"no database at {path.absolute()} ({where}): point ADVISOR_DATABASE_URL at the audit database "
                "(`advisor db upgrade` creates one)"
            )
    engine = create_single_use_engine(database_url)
    try:
        await _check_tables(engine, where, tuple(tables))
        yield engine
    finally:
        await engine.dispose()


async def _check_tables(engine: AsyncEngine, where: str, tables: tuple[str, ...]) -> None:
    def missing(connection: Connection) -> list[str]:
        present = set(inspect(connection).get_table_names())
        return [table for table in tables if table not in present]

    try:
        async with engine.connect() as conn:
            lacking = await conn.run_sync(missing)
    except Exception as exc:  # any failure to connect: refused, unknown database, bad credentials, timeout
        raise DatabaseNotReady(f"cannot connect to {where}: {one_line(exc)}") from exc
    if lacking:
        raise DatabaseNotReady(
            f"{where} is not an audit database (no table {', '.join(lacking)}): run `advisor db upgrade` to migrate it"
        )


def one_line(exc: BaseException) -> str:
    """The innermost cause of ``exc``, as ``Type: message`` on one line (SQLAlchemy's own text spans several)."""
    inner, seen = exc, {id(exc)}
    while (cause := inner.__cause__ or inner.__context__) is not None and id(cause) not in seen:
        inner = cause
        seen.add(id(cause))
    message = " ".join(str(inner).split("\n")[0].split())
    return f"{type(inner).__name__}: {message}" if message else type(inner).__name__
