"""Which database errors mean "the database is unreachable right now" (retry later) rather than a bug or bad data."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc

__all__ = ["is_database_unavailable"]

# SQLSTATE classes/codes of a server that is down, restarting, overloaded or dropped the connection:
# 08 connection exception, 53 insufficient resources (too many connections, out of memory/disk),
# 57P01..57P05 admin/crash shutdown, cannot connect now, idle session timeout. (Serialization failures and
# deadlocks, 40001/40P01, are not outages.)
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (from SQLAlchemy, asyncpg or aiosqlite) says the database cannot be reached or used now.

    True for refused/reset connections and timeouts (``OSError``, ``TimeoutError``, SQLAlchemy's pool timeout),
    a connection SQLAlchemy invalidated, ``OperationalError``/``InterfaceError`` (e.g. SQLite "database is
    locked" past the busy timeout, a closed connection) and the server's connection/resource SQLSTATEs.
    Integrity errors, programming errors and the like are not: they are bugs or bad data, not outages.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_unavailable(current):
            return True
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # TimeoutError is asyncio's too; ConnectionRefusedError etc. are OSErrors
    if isinstance(exc, asyncpg.InterfaceError):
        return True  # asyncpg's own "connection is closed" (used directly by the audit writer), as SQLAlchemy's
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        return _sqlstate_unavailable(getattr(exc.orig, "sqlstate", None))
    return _sqlstate_unavailable(getattr(exc, "sqlstate", None))


def _sqlstate_unavailable(sqlstate: object) -> bool:
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)
