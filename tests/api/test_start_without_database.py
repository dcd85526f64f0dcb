"""A worker starts while its database is away: alive, unready and refusing decisions with Retry-After, then in service
by itself once the database answers (no restart).

The end-to-end case runs `advisor serve` against a throwaway Postgres cluster of its own (``initdb``/``pg_ctl`` on a
free port; the shared server is never stopped), stopped when the service starts and started later. The in-process
case reaches the shared server through a TCP proxy that is down at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from audit.auditutil import TcpProxy, app_client
from dbutil import REQUIRE_POSTGRES_ENV, admin_url, blank_postgres_database, connect, drop_postgres_database
from profiles import WORKED_EXAMPLE
from sqlalchemy.engine import make_url

READY_WITHIN_S = 5.0
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path | None:
    """The newest installed server's bin directory (Debian's layout), if it has initdb and pg_ctl."""
    found = [p for p in Path("/").glob(PG_BIN_GLOB.lstrip("/")) if (p / "initdb").exists() and (p / "pg_ctl").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, default=None)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_POSTGRES_ENV}=1)")
    pytest.skip(reason)


def _run_as() -> list[str]:
    """initdb refuses to run as root: as root, the server's programs run as the ``postgres`` user."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        _unavailable("running as root without runuser, so initdb cannot run as the postgres user")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("running as root without a postgres user to run initdb as")
    return [runuser, "-u", "postgres", "--"]


class Cluster:
    """A Postgres cluster in ``root`` (a directory its programs can write), on its own port, trusting TCP logins."""

    def __init__(self, bin_dir: Path, root: Path, port: int, run_as: list[str]) -> None:
        self.bin_dir, self.root, self.port, self.run_as = bin_dir, root, port, run_as
        self.data, self.log = root / "data", root / "server.log"

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self.run_as, str(self.bin_dir / program), *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"{program} failed ({done.returncode}): {done.stdout}{done.stderr}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def create_database(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """An initialised, stopped cluster in a temporary directory; stopped and removed after the test."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        _unavailable(f"initdb/pg_ctl not installed (looked in {PG_BIN_GLOB}): apt-get install postgresql")
    run_as = _run_as()
    root = Path(tempfile.mkdtemp(prefix="advisor-pg-"))  # not tmp_path: the postgres user must reach it
    try:
        if run_as:
            shutil.chown(root, user="postgres", group="postgres")
        made = Cluster(bin_dir, root, _free_port(), run_as)
        made.init()
        try:
            yield made
        finally:
            made.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def serving(env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    advisor = str(Path(sys.executable).parent / "advisor")
    with (cwd / "serve.log").open("wb") as log:
        server = subprocess.Popen([advisor, "serve"], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield server
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _wait_for(base: str, path: str, status: int, *, within_s: float, server: subprocess.Popen[bytes]) -> float:
    """Seconds until GET ``path`` answers ``status``."""
    started = time.monotonic()
    last = "no answer"
    while True:
        assert server.poll() is None, f"`advisor serve` exited with {server.returncode}"
        try:
            response = httpx.get(base + path, timeout=2)
            if response.status_code == status:
                return time.monotonic() - started
            last = f"{response.status_code} {response.text}"
        except httpx.TransportError as exc:
            last = repr(exc)
        assert time.monotonic() - started < within_s, f"{path} did not answer {status} within {within_s} s: {last}"
        time.sleep(0.05)


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "database-unavailable"


@pytest.mark.postgres
def test_serve_starts_with_its_database_stopped_and_comes_into_service_when_it_starts(
    cluster: Cluster, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADVISOR_", "PROMETHEUS_MULTIPROC_DIR"))} | {
        "ADVISOR_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{cluster.port}/advisor",
        "ADVISOR_MIGRATE_ON_START": "1",
        "ADVISOR_PORT": str(port),
        "ADVISOR_LOG_FORMAT": "json",
    }
    base = f"http://127.0.0.1:{port}"
    with serving(env, tmp_path) as server:
        _wait_for(base, "/healthz", 200, within_s=30, server=server)
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"].startswith("unavailable: ConnectionRefusedError"), checks
        assert checks["migrations"] == "not checked yet: the database has not answered"
        assert checks["ruleset"] == "none active: waiting for the database"
        _assert_refused(httpx.post(f"{base}/v1/recommendations", json=WORKED_EXAMPLE, timeout=5))

        cluster.start()
        cluster.create_database("advisor")
        took = _wait_for(base, "/readyz", 200, within_s=READY_WITHIN_S, server=server)
        print(f"ready {took:.2f} s after the database was created")  # noqa: T201
        checks = httpx.get(f"{base}/readyz", timeout=5).json()["checks"]
        assert checks["migrations"] == "ok" and checks["ruleset"].startswith("active "), checks
        assert httpx.post(f"{base}/v1/recommendations", json=WORKED_EXAMPLE, timeout=5).status_code == 201
    assert "Traceback" not in (tmp_path / "serve.log").read_text()  # an expected outage logs no traceback


async def test_a_worker_started_while_its_database_is_unreachable_recovers_without_a_restart(
    pg_database_url: str,
) -> None:
    url = make_url(pg_database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.up()
    await proxy.down()  # the port is known; nothing listens on it
    via = url.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        async with app_client(via, db_connect_timeout_s=1) as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["ruleset"] == "none active: waiting for the database"
            _assert_refused(await client.post("/v1/recommendations", json=WORKED_EXAMPLE))
            pinned = await client.post("/v1/recommendations?ruleset_version=2026.1.0", json=WORKED_EXAMPLE)
            _assert_refused(pinned)
            assert (await client.get("/v1/decisions")).status_code == 503

            await proxy.up()
            await _eventually_ready(client)
            assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 201
    finally:
        await proxy.close()


async def _eventually_ready(client: Any) -> None:
    started = time.monotonic()
    while (response := await client.get("/readyz")).status_code != 200:
        assert time.monotonic() - started < READY_WITHIN_S, response.text
        await asyncio.sleep(0.05)


@pytest.mark.postgres
async def test_a_database_not_created_yet_is_named_and_migrated_once_it_is() -> None:
    async with blank_postgres_database() as url:
        name = make_url(url).database
        admin = admin_url()
        await drop_postgres_database(admin, url)
        async with app_client(url, migrate_on_start=True) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["ruleset"] == (
                f'none active: InvalidCatalogNameError: database "{name}" does not exist'
            )
            _assert_refused(await client.post("/v1/recommendations", json=WORKED_EXAMPLE))

            conn = await connect(admin)
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
            finally:
                await conn.close()
            await _eventually_ready(client)
            assert (await client.get("/readyz")).json()["checks"]["migrations"] == "ok"
            assert (await client.post("/v1/recommendations", json=WORKED_EXAMPLE)).status_code == 201
