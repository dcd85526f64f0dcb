"""What bench/http_bench.py is built from: the machine and tools, the bench databases and the servers (wrk: wrkload).

Kept apart so that the benchmark itself (variants, rounds, the table) reads in one sitting. Run nothing here; see
bench/http_bench.py and bench/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent


# --- environment --------------------------------------------------------------------------------------------


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def require_tools() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        fail("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu), then run this again")
    if not (BIN / "advisor").exists():
        fail(f"{BIN / 'advisor'} not found: run this with the project's venv python (.venv/bin/python)")
    return str(wrk)


def pinning() -> tuple[list[str], list[str], str]:
    """taskset prefixes for the server and for wrk, and a sentence saying what was done."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return [], [], f"not pinned ({len(cpus)} CPU(s) available): server, wrk and Postgres share the CPU(s)"
    server = ",".join(map(str, cpus[:-1]))
    load = str(cpus[-1])
    return (
        ["taskset", "-c", server],
        ["taskset", "-c", load],
        f"server on CPU {server}, wrk on CPU {load} (taskset); Postgres not pinned (shares all CPUs)",
    )


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpu_model": cpu_model,
        "nproc": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "memory_mib": mem_kib // 1024,
        "kernel": platform.release(),
        "hostname": socket.gethostname(),
    }


def versions(wrk: str) -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for dist in ("litestar", "msgspec", "uvicorn", "uvloop", "httptools", "sqlalchemy", "asyncpg"):
        with contextlib.suppress(Exception):
            out[dist] = version(dist)
    wrk_help = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
    out["wrk"] = (wrk_help.stdout or wrk_help.stderr).splitlines()[0].strip()
    return out


def loadavg() -> float:
    """1-minute load average: anything else busy on the machine makes every figure noisier."""
    return round(os.getloadavg()[0], 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worked_example() -> bytes:
    from service.api.openapi_docs import WORKED_EXAMPLE

    return json.dumps(WORKED_EXAMPLE).encode()


def audit_defaults() -> dict[str, Any]:
    from service.settings import Settings

    fields = Settings.model_fields
    return {
        "ADVISOR_AUDIT_BATCH_MAX_ROWS": fields["audit_batch_max_rows"].default,
        "ADVISOR_AUDIT_BATCH_MAX_WAIT_MS": fields["audit_batch_max_wait_ms"].default,
        "ADVISOR_DB_POOL_SIZE": fields["db_pool_size"].default,
    }


# --- Postgres -------------------------------------------------------------------------------------------------


def pg(dsn: str, sql: str) -> Any:
    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


@contextlib.contextmanager
def bench_database(admin_dsn: str, server_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A fresh database, migrated; yields (asyncpg DSN, SQLAlchemy URL) and drops it afterwards."""
    name = f"advisor_bench_{uuid.uuid4().hex[:12]}"
    base = admin_dsn.rsplit("/", 1)[0]
    dsn = f"{base}/{name}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    pg(admin_dsn, f'CREATE DATABASE "{name}"')
    try:
        env = server_env | {"ADVISOR_DATABASE_URL": url}
        done = subprocess.run(
            [str(BIN / "advisor"), "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )
        if done.returncode != 0:
            raise RuntimeError(f"advisor db upgrade failed:\n{done.stdout}{done.stderr}")
        yield dsn, url
    finally:
        pg(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settled_count(dsn: str, timeout_s: float = 30.0) -> int:
    """SELECT count(*) FROM decisions once it stops moving (requests in flight when wrk stopped still commit)."""
    deadline = time.monotonic() + timeout_s
    last = -1
    while True:
        now = int(pg(dsn, "SELECT count(*) FROM decisions"))
        if now == last or time.monotonic() > deadline:
            return now
        last = now
        time.sleep(0.5)


def audit_transactions(dsn: str) -> int:
    """How many transactions wrote the rows of ``decisions``: rows committed together share their xmin."""
    return int(pg(dsn, "SELECT count(DISTINCT xmin::text) FROM decisions"))


# --- servers --------------------------------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    workers: int
    worker_pids: list[int] = field(default_factory=list)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_server(cmd: list[str], env: dict[str, str], workers: int, logdir: Path, name: str) -> Server:
    port = free_port()
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop_server can end it and its workers by its id
        )
    server = Server(proc, port, log, workers)
    try:
        wait_ready(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_ready(server: Server, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{server.port}/readyz"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    else:
        raise RuntimeError(f"server not ready within {timeout_s:.0f} s:\n{server.log_tail()}")
    # Every worker must be up before the load starts; then note their pids (for RSS).
    while time.monotonic() < deadline:
        server.worker_pids = worker_pids(server.proc.pid, server.workers)
        if len(server.worker_pids) >= server.workers:
            return
        time.sleep(0.2)
    raise RuntimeError(f"only {len(server.worker_pids)} of {server.workers} workers started")


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
    return out


def worker_pids(master: int, workers: int) -> list[int]:
    """uvicorn serves in its own process with one worker; with more, in spawned children."""
    if workers == 1:
        return [master]
    found = []
    for pid in children(master):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return sorted(found)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes used so far (``/proc/<pid>/stat``)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


_COMMITTED = re.compile(r'^advisor_audit_commit_duration_seconds_(sum|count)\{outcome="committed"\} (\S+)$', re.M)
# A Counter called advisor_audit_chain_wait_seconds is exposed as ..._total; any labels are summed over.
_CHAIN_WAIT = re.compile(r"^advisor_audit_chain_wait_seconds_total(?:\{[^}]*\})? (\S+)$", re.M)


@dataclass(frozen=True)
class AuditTotals:
    """The advisor's audit counters from /metrics, every worker's added up (in multiprocess mode /metrics sums
    them). ``chain_wait_s`` is None when the server exposes no ``advisor_audit_chain_wait_seconds_total``."""

    commit_s: float
    commit_batches: float
    chain_wait_s: float | None


def audit_totals(port: int) -> AuditTotals:
    """Seconds spent in committed audit batches, their number, and seconds spent waiting on the chain."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = dict(_COMMITTED.findall(text))
    waits = _CHAIN_WAIT.findall(text)
    return AuditTotals(
        commit_s=float(found.get("sum", 0)),
        commit_batches=float(found.get("count", 0)),
        chain_wait_s=sum(float(v) for v in waits) if waits else None,
    )


def stop_server(server: Server) -> None:
    """SIGTERM (uvicorn shuts down gracefully: the audit writer commits what is queued), then SIGKILL its group."""
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
