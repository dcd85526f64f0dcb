"""Test databases: a SQLite file, or a fresh Postgres database per test next to ADVISOR_TEST_DATABASE_URL.

Postgres cases skip when the server is unreachable, unless ADVISOR_REQUIRE_POSTGRES=1 (then they fail).
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

ADMIN_URL_ENV = "ADVISOR_TEST_DATABASE_URL"
REQUIRE_POSTGRES_ENV = "ADVISOR_REQUIRE_POSTGRES"
DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"  # every cluster has it
TEST_DATABASE_PREFIX = "advisor_t_"
CONNECT_TIMEOUT_S = 5.0

# admin URL -> None when reachable, else why not (checked once per test session).
_unavailable: dict[str, str | None] = {}


def admin_url() -> str:
    return os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def asyncpg_dsn(url: str | URL) -> str:
    """The libpq-style DSN asyncpg wants for a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(url: str | URL) -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(url), timeout=CONNECT_TIMEOUT_S)


async def postgres_unavailable_reason(url: str) -> str | None:
    if url not in _unavailable:
        try:
            conn = await connect(url)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            shown = make_url(url).render_as_string(hide_password=True)
            _unavailable[url] = f"Postgres unreachable at {shown} (set {ADMIN_URL_ENV}): {type(exc).__name__}: {exc}"
        else:
            await conn.close()
            _unavailable[url] = None
    return _unavailable[url]


async def require_postgres(url: str) -> None:
    """Skip the test (or fail it, with ADVISOR_REQUIRE_POSTGRES=1) when Postgres is unreachable."""
    reason = await postgres_unavailable_reason(url)
    if reason is None:
        return
    if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_POSTGRES_ENV}=1 makes that an error")
    pytest.skip(reason)


async def create_postgres_database(admin: str) -> str:
    """Create an empty database on the admin URL's server; return its URL."""
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
    conn = await connect(admin)
    try:
        # template0: nobody is ever connected to it, so concurrent test runs can't block each other.
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await conn.close()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(admin: str, url: str) -> None:
    name = make_url(url).database
    assert name is not None
    assert name.startswith(TEST_DATABASE_PREFIX), name
    conn = await connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def blank_postgres_database() -> AsyncIterator[str]:
    """A fresh, un-migrated Postgres database, dropped on exit."""
    admin = admin_url()
    await require_postgres(admin)
    url = await create_postgres_database(admin)
    try:
        yield url
    finally:
        await drop_postgres_database(admin, url)


@asynccontextmanager
async def blank_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, un-migrated database URL for ``backend`` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "advisor.db")
    elif backend == "postgres":
        async with blank_postgres_database() as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")


@asynccontextmanager
async def recorded_statements(engine: AsyncEngine) -> AsyncIterator[list[str]]:
    """Every SQL statement ``engine`` sends while the block runs: those SQLAlchemy executes and those the code sends
    on asyncpg itself (the audit writer's Postgres path). The pool is emptied first, so that every connection used
    in the block is new and carries the driver-level logger."""
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    def record_driver(query: Any) -> None:
        statements.append(query.query)

    def log_driver_queries(dbapi_connection: Any, connection_record: object) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if isinstance(driver, asyncpg.Connection):
            driver.add_query_logger(record_driver)

    await engine.dispose()
    event.listen(engine.sync_engine, "connect", log_driver_queries)
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        event.remove(engine.sync_engine, "connect", log_driver_queries)
        await engine.dispose()  # no logger outlives the block


def decision_inserts(statements: list[str]) -> list[str]:
    return [s for s in statements if "INSERT INTO DECISIONS" in s.upper()]


def document_inserts(statements: list[str]) -> list[str]:
    """The statements that store profiles and answers (on Postgres the same one that inserts the decisions)."""
    return [s for s in statements if "INSERT INTO AUDIT_DOCUMENTS" in s.upper()]


def uuid7_at(when: datetime) -> uuid.UUID:
    """A UUIDv7 of the millisecond ``when`` (the service makes each id just before it stamps created_at, and finds a
    decision by the time its id carries)."""
    millis = int(when.timestamp() * 1000)
    rand_a, rand_b = random.getrandbits(12), random.getrandbits(62)
    return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
