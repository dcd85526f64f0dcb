"""Load-and-fault check: saturate POST /v1/recommendations, restart Postgres midway, prove nothing was lost.

Run (restarts the local Postgres cluster; loopback only; bounded in time):
    .venv/bin/python bench/load_and_fault.py [--duration 60] [--restart-at 20] [--down-for 3] [--connections 32]

Checks, and prints the counts:
- number of 2xx answers == number of new audit rows;
- every answered decision_id is stored, and its answer is byte-identical to what the audit row rebuilds;
- no 5xx other than 503 (and 503 only around the outage);
- /readyz is ready again within 10 s of the database accepting connections.
Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import httpx

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


async def drive(base: str, args: argparse.Namespace) -> tuple[Load, list[tuple[float, bool]], dict[str, float], float]:
    load, ready_log, marks = Load(base), [], {}
    start = time.monotonic()
    deadline = start + args.duration
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        await asyncio.gather(
            *(load.worker(client, deadline, n) for n in range(args.connections)),
            watch_ready(base, deadline + 15, ready_log),
            restart_postgres(start + args.restart_at, args.down_for, marks),
        )
    return load, ready_log, marks, start


async def admin_sql(sql: str, dsn: str = ADMIN_DSN) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> int:
    name = f"advisor_fault_{uuid.uuid4().hex[:10]}"
    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    env = os.environ | {
        "ADVISOR_DATABASE_URL": url,
        "ADVISOR_LOG_LEVEL": "WARNING",
        "ADVISOR_RULES_DIR": str(ROOT / "rules"),
    }
    advisor = str(Path(sys.executable).parent / "advisor")
    subprocess.run([advisor, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([advisor, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        load, ready_log, marks, start = asyncio.run(drive(base, args))
        rows = asyncio.run(
            admin_sql(
                "SELECT id, created_at, recommendation FROM decisions", f"postgresql://postgres@127.0.0.1:5432/{name}"
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    stored = {str(r["id"]): r for r in rows}
    mismatched = [
        d
        for d, body in load.answers.items()
        if d not in stored
        or response_body(uuid.UUID(d), stored[d]["created_at"], stored[d]["recommendation"].encode()) != body
    ]
    ready_again = next((t for t, ok in ready_log if ok and t > marks.get("db_back", float("inf"))), None)
    recovery = ready_again - marks["db_back"] if ready_again is not None and "db_back" in marks else None
    unready_seen = any(not ok for t, ok in ready_log if marks.get("stop", 0) <= t <= marks.get("db_back", 0))
    ok2xx = load.statuses[201]
    print(
        f"duration {args.duration}s, {args.connections} connections, Postgres down for "
        f"{marks.get('db_back', 0) - marks.get('stop', 0):.1f} s from t={marks.get('stop', start) - start:.1f} s"
    )
    print(f"answers: {dict(sorted(load.statuses.items()))}; client transport errors: {dict(load.errors)}")
    print(f"2xx answered: {ok2xx}; new audit rows: {len(rows)}; answered ids missing or differing: {len(mismatched)}")
    print(
        f"5xx other than 503: {len(load.bad_5xx)}; 503 answers: {load.statuses[503]}; "
        f"/readyz unready during outage: {unready_seen}"
    )
    print(
        f"ready again {recovery:.2f} s after the database accepted connections"
        if recovery is not None
        else "never ready again"
    )
    failures = []
    if ok2xx != len(rows):
        failures.append("2xx count != audit rows")
    if mismatched:
        failures.append("answered decisions missing or differing")
    if load.bad_5xx:
        failures.append("5xx other than 503")
    if recovery is None or recovery > 10:
        failures.append("not ready within 10 s of the database")
    print("FAILED: " + "; ".join(failures) if failures else "OK: nothing lost, nothing altered, recovered by itself")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--restart-at", type=float, default=20)
    parser.add_argument("--down-for", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
