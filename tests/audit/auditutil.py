"""Helpers of the audit tests: rows, counters, tampering, the app, a TCP proxy that plays an outage."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from dbutil import uuid7_at
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from storedrows import decision_count

from service.app import create_app
from service.db import AuditRepository, DecisionRow
from service.db.documents import digest, month_of
from service.services.audit import AuditWriter, verify_chain
from service.settings import Settings

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
SHA = "a" * 64
T0 = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC)


def decision(n: int = 0, **overrides: Any) -> DecisionRow:
    """A decision row (its ruleset is SHA, stored by ``seed``); its id carries the time of its created_at."""
    created_at = overrides.get("created_at", T0 + timedelta(microseconds=n))
    values: dict[str, Any] = {
        "id": uuid7_at(created_at),
        "created_at": created_at,
        "ruleset_sha256": SHA,
        "ruleset_version": "2026.11.1",
        "caller": "team-a",
        "request_id": f"req-{n}",
        "family": "g",
        "instance_type": "ml.g5.xlarge",
        "scaling_method": "target_tracking",
        "instances": 2,
        "profile": f'{{"n":{n},"name":"ünïcode ✓"}}',
        "recommendation": f'{{"n":{n}}}',
    }
    values.update(overrides)
    return DecisionRow(**values)


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await AuditRepository(conn).save_ruleset(SHA, "2026.11.1", "test", {"a.yaml": "a: 1\n"}, T0)


async def count_decisions(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await decision_count(conn)


class CommitCounter:
    """Counts the transactions that stored decisions while the block ran.

    Postgres: the distinct ``xmin`` (inserting transaction) of the decision rows that appeared, whichever way they
    were committed (the writer's one-statement path commits on asyncpg itself). SQLite: SQLAlchemy's ``commit``
    events.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._events = 0
        self._before: set[str] = set()
        self.commits = 0

    def _on_commit(self, conn: object) -> None:
        self._events += 1

    async def _xmins(self) -> set[str]:
        async with self.engine.connect() as conn:
            return {row[0] for row in await conn.execute(text("SELECT DISTINCT xmin::text FROM decisions"))}

    async def __aenter__(self) -> CommitCounter:
        if self.postgres:
            self._before = await self._xmins()
        else:
            event.listen(self.engine.sync_engine, "commit", self._on_commit)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.postgres:
            self.commits = len(await self._xmins() - self._before)
        else:
            event.remove(self.engine.sync_engine, "commit", self._on_commit)
            self.commits = self._events


async def unprotect(engine: AsyncEngine) -> None:
    """Lift the append-only triggers of the decisions and their documents, as someone with the database's owner
    rights could."""
    async with engine.begin() as conn:
        for table in ("decisions", "audit_documents"):
            if engine.dialect.name == "postgresql":
                await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            else:
                await conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
                await conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))


def hex_sql(engine: AsyncEngine, column: str) -> str:
    """SQL for the lowercase hex of a binary hash column (``decisions.row_hash`` and the like are 32 bytes; the
    chain heads and checkpoints keep hex text)."""
    if engine.dialect.name == "postgresql":
        return f"encode({column}, 'hex')"
    return f"lower(hex({column}))"


async def document_of(engine: AsyncEngine, seq: int, which: str, chain: int = 1) -> tuple[int, bytes]:
    """The ``(month, sha256)`` of the ``which`` ("profile" or "recommendation") document of decision ``seq``."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(f"SELECT created_at, {which}_sha256 FROM decisions WHERE chain = :chain AND seq = :seq"),
                {"chain": chain, "seq": seq},
            )
        ).one()
    created_at = row[0] if isinstance(row[0], datetime) else datetime.fromisoformat(row[0]).replace(tzinfo=UTC)
    return month_of(created_at), bytes(row[1])


async def store_document(engine: AsyncEngine, month: int, body: str) -> bytes:
    """Store ``body`` as a plain (codec 0) document of ``month``, as someone writing to the table could; its name."""
    sha256 = digest(body)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO audit_documents (month, sha256, codec, dictionary, body) VALUES (:m, :s, 0, NULL, :b)"),
            {"m": month, "s": sha256, "b": body.encode()},
        )
    return sha256


async def assert_edit_is_caught(engine: AsyncEngine, column: str, value: str, seq: int) -> None:
    """Set ``column`` to the SQL literal ``value`` in row ``seq`` as the owner could; verification must name it."""
    await unprotect(engine)
    async with engine.begin() as conn:
        await conn.execute(text(f"UPDATE decisions SET {column} = {value} WHERE seq = {seq}"))
    report = await verify_chain(engine)
    assert report.broken is not None and report.broken.seq == seq, str(report)
    assert "row hash mismatch — the row was changed" in str(report)


# --- the app ------------------------------------------------------------------------------------------------

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
MakeWriter = Callable[..., AuditWriter]


def app_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, "rules_dir": RULES_DIR, "api_keys": ()}  # local mode
    return Settings(**(values | overrides))


@asynccontextmanager
async def app_client(database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, run in this event loop (lifespan included), and an httpx client calling it in-process.

    Unlike Litestar's test clients, which run the app in a portal thread and block this loop for each request,
    requests gathered here really run concurrently, and servers started in this loop (``TcpProxy``) keep working.
    """
    app = create_app(app_settings(database_url, **overrides))
    async with run_lifespan(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


@asynccontextmanager
async def run_lifespan(app: Any) -> AsyncIterator[None]:
    """Drive the ASGI lifespan protocol: startup on entry, shutdown (awaited) on exit."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.create_task(app(scope, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    if started["type"] != "lifespan.startup.complete":
        await task
        raise RuntimeError(f"the app did not start: {started}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await from_app.get()
        await task
        if stopped["type"] != "lifespan.shutdown.complete":
            raise RuntimeError(f"the app did not shut down cleanly: {stopped}")


# --- a TCP proxy that can play "the database is down" ---------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``down()`` refuses and cuts every connection, ``up()`` restores."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.down()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._transports.update((writer.transport, up_writer.transport))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sink.transport.abort()
            self._transports.discard(sink.transport)


def frozen_row(**overrides: Any) -> DecisionRow:
    """The row whose chain hashes are pinned (test_chain.py, test_engine_version.py): the encoding must not drift."""
    fields: dict[str, Any] = {
        "id": uuid.UUID("01930000-0000-7000-8000-000000000001"),
        "created_at": datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
        "ruleset_sha256": "a" * 64,
        "ruleset_version": "2026.11.1",
        "caller": "key:ci",
        "request_id": "req-1",
        "family": "g",
        "instance_type": "ml.g5.xlarge",
        "scaling_method": None,
        "instances": 2,
        "profile": '{"name":"ünïcode"}',
        "recommendation": "{}",
    }
    return DecisionRow(**(fields | overrides))
