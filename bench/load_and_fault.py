"""Load-and-fault check: saturate POST /v1/recommendations, restart Postgres midway, prove nothing was lost.

Run (restarts the local Postgres cluster; loopback only; bounded in time):
    .venv/bin/python bench/load_and_fault.py [--duration 60] [--restart-at 20] [--down-for 3] [--connections 32]
        [--workers 1] [--kill-worker-at S]

``--workers N`` serves with N uvicorn workers (``advisor serve --workers N``). ``--kill-worker-at S`` (N >= 2)
also sends SIGKILL to one worker process (never uvicorn's master) S seconds into the load, and reports whether and
when the master started a replacement.

Checks, and prints the counts:
- number of 2xx answers == number of new audit rows; with a worker killed, the rows may exceed the 2xx answers by
  at most the requests that got no answer (a batch the killed worker committed before it could answer);
- every answered decision_id is stored, and its answer is byte-identical to what the audit row rebuilds (lost
  rows: answered ids not stored);
- no 5xx other than 503 (and 503 only around the outage);
- /readyz is ready again within 10 s of the database accepting connections;
- ``advisor audit verify`` against the run's database exits 0 (the hash chain is whole).
Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from benchkit import worker_pids  # bench/benchkit.py: this script's directory is first on sys.path

from service.api.openapi_docs import WORKED_EXAMPLE
from service.services.decisions import response_body

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[0]


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], check=False).returncode == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Load:
    def __init__(self, base: str) -> None:
        self.base = base
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.answers: dict[str, bytes] = {}  # decision_id -> response body
        self.bad_5xx: list[tuple[float, int]] = []
        self.t503: list[float] = []

    async def worker(self, client: httpx.AsyncClient, deadline: float, offset: int) -> None:
        i = offset
        while time.monotonic() < deadline:
            body = copy.deepcopy(WORKED_EXAMPLE)
            body["traffic"]["peak_rps"] = 10 + i % 500
            i += 1000
            try:
                response = await client.post("/v1/recommendations", json=body)
            except httpx.TransportError as exc:
                self.errors[type(exc).__name__] += 1
                continue
            self.statuses[response.status_code] += 1
            if response.status_code == 201:
                self.answers[response.json()["decision_id"]] = response.content
            elif response.status_code == 503:
                self.t503.append(time.monotonic())
                await asyncio.sleep(0.05)
            elif response.status_code >= 500:
                self.bad_5xx.append((time.monotonic(), response.status_code))


async def watch_ready(base: str, deadline: float, log: list[tuple[float, bool]]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                ok = (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                ok = False
            log.append((time.monotonic(), ok))
            await asyncio.sleep(0.1)


async def restart_postgres(at: float, down_for: float, marks: dict[str, float]) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    version = pg_version()
    marks["stop"] = time.monotonic()
    await asyncio.to_thread(
        subprocess.run,
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "-m", "fast"],
        check=True,
    )
    await asyncio.sleep(down_for)
    await asyncio.to_thread(
        subprocess.run, ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True
    )
    while not await asyncio.to_thread(pg_ready):  # noqa: ASYNC110 - polling an external process
        await asyncio.sleep(0.05)
    marks["db_back"] = time.monotonic()


async def kill_worker(at: float, master: int, workers: int, marks: dict[str, float], pids: dict[str, int]) -> None:
    """SIGKILL one worker process (not the master) at ``at``; then note when (if) the master has N workers again,
    one of them new."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    before = worker_pids(master, workers)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    marks["kill"] = time.monotonic()
    pids["killed"] = victim
    deadline = marks["kill"] + 30
    while time.monotonic() < deadline:
        now = worker_pids(master, workers)
        if victim not in now and len(now) >= workers:
            marks["replaced"] = time.monotonic()
            pids["replacement"] = next(pid for pid in now if pid not in before)
            return
        await asyncio.sleep(0.05)


async def drive(
    base: str, args: argparse.Namespace, master: int
) -> tuple[Load, list[tuple[float, bool]], dict[str, float], dict[str, int], float]:
    load, ready_log, marks, pids = Load(base), [], {}, {}
    start = time.monotonic()
    deadline = start + args.duration
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    faults = [restart_postgres(start + args.restart_at, args.down_for, marks)]
    if args.kill_worker_at is not None:
        faults.append(kill_worker(start + args.kill_worker_at, master, args.workers, marks, pids))
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        await asyncio.gather(
            *(load.worker(client, deadline, n) for n in range(args.connections)),
            watch_ready(base, deadline + 15, ready_log),
            *faults,
        )
    return load, ready_log, marks, pids, start


async def admin_sql(sql: str, dsn: str = ADMIN_DSN) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def start_service(env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """``advisor serve --workers N`` on a free port, once /readyz answers 200 and all N workers are up."""
    advisor = str(Path(sys.executable).parent / "advisor")
    subprocess.run([advisor, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([advisor, "serve", "--port", str(port), "--workers", str(workers)], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            ready = httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            ready = False
        if ready and len(worker_pids(server.pid, workers)) >= workers:
            break
        time.sleep(0.1)
    return server, base


def verify_chain(env: dict[str, str]) -> tuple[int, str]:
    """``advisor audit verify`` against the run's database: its exit status and output."""
    advisor = str(Path(sys.executable).parent / "advisor")
    done = subprocess.run([advisor, "audit", "verify"], env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclass
class Outcome:
    load: Load
    ready_log: list[tuple[float, bool]]
    marks: dict[str, float]
    pids: dict[str, int]
    start: float
    rows: list[asyncpg.Record]
    verify: tuple[int, str]


def run(args: argparse.Namespace) -> int:
    name = f"advisor_fault_{uuid.uuid4().hex[:10]}"
    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    env = os.environ | {
        "ADVISOR_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
        "ADVISOR_LOG_LEVEL": "WARNING",
        "ADVISOR_RULES_DIR": str(ROOT / "rules"),
    }
    server = None
    try:
        server, base = start_service(env, args.workers)
        load, ready_log, marks, pids, start = asyncio.run(drive(base, args, server.pid))
        rows = asyncio.run(
            admin_sql(
                "SELECT id, created_at, recommendation FROM decisions", f"postgresql://postgres@127.0.0.1:5432/{name}"
            )
        )
        server.terminate()
        server.wait(timeout=30)
        outcome = Outcome(load, ready_log, marks, pids, start, rows, verify_chain(env))
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return report(args, outcome)


def report_kill(args: argparse.Namespace, o: Outcome) -> None:
    if args.kill_worker_at is None:
        return
    if "kill" not in o.marks:
        print("worker kill: not done (the run ended first)")
    elif "replaced" in o.marks:
        print(
            f"worker kill: pid {o.pids['killed']} SIGKILLed at t={o.marks['kill'] - o.start:.1f} s; the master started "
            f"pid {o.pids['replacement']} in its place {o.marks['replaced'] - o.marks['kill']:.2f} s later"
        )
    else:
        print(f"worker kill: pid {o.pids['killed']} SIGKILLed; no replacement within 30 s")


def report(args: argparse.Namespace, o: Outcome) -> int:
    load, marks = o.load, o.marks
    stored = {str(r["id"]): r for r in o.rows}
    missing = [d for d in load.answers if d not in stored]
    differing = [
        d
        for d, body in load.answers.items()
        if d in stored
        and response_body(uuid.UUID(d), stored[d]["created_at"], stored[d]["recommendation"].encode()) != body
    ]
    ready_again = next((t for t, ok in o.ready_log if ok and t > marks.get("db_back", float("inf"))), None)
    recovery = ready_again - marks["db_back"] if ready_again is not None and "db_back" in marks else None
    unready_seen = any(not ok for t, ok in o.ready_log if marks.get("stop", 0) <= t <= marks.get("db_back", 0))
    ok2xx = load.statuses[201]
    unanswered = sum(load.errors.values())
    extra = max(0, len(o.rows) - ok2xx)
    print(
        f"duration {args.duration}s, {args.connections} connections, {args.workers} worker(s), Postgres down for "
        f"{marks.get('db_back', 0) - marks.get('stop', 0):.1f} s from t={marks.get('stop', o.start) - o.start:.1f} s"
    )
    report_kill(args, o)
    print(f"answers: {dict(sorted(load.statuses.items()))}; client transport errors: {dict(load.errors)}")
    print(
        f"2xx answered: {ok2xx}; new audit rows: {len(o.rows)}; lost rows (answered ids not stored): {len(missing)}; "
        f"stored answers differing: {len(differing)}; rows without a 2xx: {extra}"
    )
    print(
        f"5xx other than 503: {len(load.bad_5xx)}; 503 answers: {load.statuses[503]}; "
        f"/readyz unready during outage: {unready_seen}"
    )
    print(
        f"ready again {recovery:.2f} s after the database accepted connections"
        if recovery is not None
        else "never ready again"
    )
    print(f"advisor audit verify: exit {o.verify[0]}: {o.verify[1]}")
    failures = []
    if args.kill_worker_at is None and ok2xx != len(o.rows):
        failures.append("2xx count != audit rows")
    if args.kill_worker_at is not None and (len(o.rows) < ok2xx or extra > unanswered):
        failures.append("audit rows outside [2xx, 2xx + requests without an answer]")
    if missing or differing:
        failures.append("answered decisions missing or differing")
    if load.bad_5xx:
        failures.append("5xx other than 503")
    if recovery is None or recovery > 10:
        failures.append("not ready within 10 s of the database")
    if o.verify[0] != 0:
        failures.append("advisor audit verify failed")
    print("FAILED: " + "; ".join(failures) if failures else "OK: nothing lost, nothing altered, recovered by itself")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--restart-at", type=float, default=20)
    parser.add_argument("--down-for", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (default 1)")
    parser.add_argument(
        "--kill-worker-at", type=float, default=None, help="SIGKILL one worker at this second (--workers 2+)"
    )
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.kill_worker_at is not None and args.workers < 2:
        parser.error("--kill-worker-at needs --workers 2 or more (with one worker uvicorn serves from its master)")
    sys.exit(run(args))


if __name__ == "__main__":
    main()
