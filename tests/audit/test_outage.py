"""The database goes away and comes back: 503 with Retry-After, unready, then recovery without a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from auditutil import TcpProxy, app_client, decision, seed
from dbutil import connect
from profiles import WORKED_EXAMPLE
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from service.db import create_engine
from service.db.errors import is_database_unavailable
from service.services.audit import AuditWriter, verify_chain
from service.settings import Settings

Client = httpx.AsyncClient


@pytest.fixture
async def proxy(pg_database_url: str) -> AsyncIterator[TcpProxy]:
    url = make_url(pg_database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.up()
    try:
        yield proxy
    finally:
        await proxy.close()


def via(proxy: TcpProxy, database_url: str) -> str:
    return make_url(database_url).set(port=proxy.port).render_as_string(hide_password=False)


async def post(client: Client) -> Any:
    return await client.post("/v1/recommendations", json=WORKED_EXAMPLE)


async def stored(database_url: str) -> int:
    conn = await connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM decisions"))
    finally:
        await conn.close()


async def eventually(client: Client, path: str, status: int, *, within_s: float = 10.0, post_it: bool = False) -> float:
    """Seconds until ``path`` answers ``status``."""
    started = time.monotonic()
    while True:
        response = await (post(client) if post_it else client.get(path))
        if response.status_code == status:
            return time.monotonic() - started
        assert time.monotonic() - started < within_s, f"{path} still answers {response.status_code}: {response.text}"
        await asyncio.sleep(0.2)


async def test_database_down_is_503_and_unready_then_recovers(proxy: TcpProxy, pg_database_url: str) -> None:
    async with app_client(via(proxy, pg_database_url), db_connect_timeout_s=1) as client:
        assert (await post(client)).status_code == 201
        assert (await client.get("/readyz")).status_code == 200

        await proxy.down()  # refuses new connections and cuts the pooled ones
        refused = await asyncio.gather(*(post(client) for _ in range(5)))
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "2"
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["code"] == "database-unavailable" and problem["status"] == 503
        for path in ("/v1/decisions", "/v1/rulesets"):
            response = await client.get(path)
            assert response.status_code == 503 and response.headers["retry-after"] == "2", path
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("unavailable")
        assert (await client.get("/healthz")).status_code == 200  # alive: an outage must not restart pods

        await proxy.up()  # same port, as a restarted server
        assert await eventually(client, "/readyz", 200) < 5
        assert await eventually(client, "/v1/recommendations", 201, post_it=True) < 5
    assert await stored(pg_database_url) == 2  # fail closed: none of the refused requests left a row


async def test_a_hanging_database_times_out_as_503(proxy: TcpProxy, pg_database_url: str) -> None:
    """Connections accepted but never answered (a partition): the connect timeout bounds the wait."""
    async with app_client(via(proxy, pg_database_url), db_connect_timeout_s=0.5) as client:
        assert (await post(client)).status_code == 201
        await proxy.down()
        silent: list[asyncio.StreamWriter] = []

        async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            silent.append(writer)

        server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", proxy.port)
        try:
            started = time.monotonic()
            response = await post(client)
            assert response.status_code == 503 and response.headers["retry-after"] == "2"
            assert time.monotonic() - started < 5
            assert silent  # the app did connect, and was left hanging
        finally:
            server.close()
            for writer in silent:
                writer.close()
            await server.wait_closed()
        await proxy.up()
        await eventually(client, "/v1/recommendations", 201, post_it=True)


async def test_terminated_connections_are_replaced_transparently(pg_database_url: str) -> None:
    """The server drops every connection (restart, failover, pg_terminate_backend): the pool reconnects."""
    async with app_client(pg_database_url) as client:
        for _ in range(2):  # the second batch goes the one-statement way, on the connection the writer keeps
            assert (await post(client)).status_code == 201
        admin = await connect(pg_database_url)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'advisor' AND datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert killed >= 1
        # The writer's kept connection and the pooled ones are dead: the writer commits on a fresh one, the pool's
        # pre-ping replaces the others.
        assert (await post(client)).status_code == 201
        assert (await post(client)).status_code == 201
        assert (await client.get("/readyz")).status_code == 200
    assert await stored(pg_database_url) == 4


async def test_a_kept_connection_out_of_step_with_the_server_is_replaced(
    pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg's protocol can fall out of step when the server ends an idle connection ("cannot switch to state
    12; another operation is in progress"): the writer's kept connection is then dropped like a lost one and the
    batch is committed on a fresh connection."""
    engine = create_engine(Settings(database_url=pg_database_url))
    await seed(engine)
    writer = AuditWriter(engine, max_rows=8, max_wait_ms=0)
    try:
        for i in range(2):  # the second batch opens the kept connection
            await writer.write(decision(i))
        assert writer._direct is not None
        kept = (await writer._direct.get_raw_connection()).driver_connection
        fetchrow = asyncpg.Connection.fetchrow

        async def out_of_step(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
            if self is kept:
                raise asyncpg.exceptions.InternalClientError(
                    "cannot switch to state 12; another operation (2) is in progress"
                )
            return await fetchrow(self, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, "fetchrow", out_of_step)
        row = decision(2)
        assert await writer.write(row) == row
        assert writer.stats.failed_batches == 0
    finally:
        await writer.stop()
        report = await verify_chain(engine)
        await engine.dispose()
    assert report.ok and report.decisions == 3, str(report)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError(), True),
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        (sa_exc.OperationalError("SELECT 1", {}, Exception("database is locked")), True),
        (sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")), True),
        (sa_exc.DBAPIError("SELECT 1", {}, Exception("x"), connection_invalidated=True), True),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.exceptions.TooManyConnectionsError("too many clients"), True),
        (asyncpg.exceptions.InterfaceError("connection is closed"), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True),
        (asyncpg.exceptions.UniqueViolationError("duplicate key value"), False),
        (sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (sa_exc.ProgrammingError("SELECT", {}, Exception("syntax error")), False),
        (ValueError("naive datetime"), False),
        (RuntimeError("bug"), False),
    ],
)
def test_which_errors_mean_the_database_is_unavailable(error: BaseException, unavailable: bool) -> None:
    assert is_database_unavailable(error) is unavailable


def test_a_wrapped_connection_error_is_unavailable() -> None:
    try:
        try:
            raise ConnectionResetError("reset by peer")
        except ConnectionResetError as inner:
            raise RuntimeError("while committing") from inner
    except RuntimeError as outer:
        assert is_database_unavailable(outer)
