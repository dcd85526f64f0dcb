"""What many audit writers cost one Postgres: commits/s, rows/s, commit latency, Postgres CPU and WAL per row.

Run: .venv/bin/python bench/pg_writers.py [--writers 1,2,4,8,16] [--batch 8] [--seconds 10] [--processes 1]

Each writer is a real ``AuditWriter`` (its own engine, its own hash chain claimed with an advisory lock, one
statement per batch), fed by ``--depth`` x batch tasks so that a full batch is always queued when a commit ends.
The rows are the service's: the worked example's body as the profile and the real answer to it as the
recommendation (about 13 KB of JSON), built before the measured window. No HTTP: the database's cost per commit and
per row is measured directly, which is what decides how many replicas one Postgres can take. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from benchkit import BIN, ROOT, bench_database, git, loadavg, machine, worked_example
from http_report import save

ADMIN_DSN = os.environ.get("ADVISOR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SETTINGS_SHOWN = ("server_version", "synchronous_commit", "fsync", "wal_level", "full_page_writes")
SETTINGS_SHOWN += ("wal_compression", "wal_sync_method", "commit_delay", "shared_buffers", "data_directory")
COMMITTED = {"outcome": "committed"}
COMMIT_METRIC = "advisor_audit_commit_duration_seconds"


# --- the rows -------------------------------------------------------------------------------------------------


def real_answer() -> dict[str, Any]:
    """The fields every row shares: the worked example's body and the shipped rules' answer to it."""
    import msgspec

    from service import __version__
    from service.contract import WorkloadProfile
    from service.engine import compile_ruleset
    from service.engine.memo import RecommendationMemo
    from service.rulebook.loader import load_ruleset

    body = worked_example()
    ruleset = compile_ruleset(load_ruleset(ROOT / "rules"))
    answer = RecommendationMemo().get(msgspec.json.decode(body, type=WorkloadProfile), ruleset)
    return {
        "ruleset_sha256": ruleset.sha256,
        "ruleset_version": ruleset.version,
        "caller": "bench",
        "family": answer.family,
        "instance_type": answer.instance_type,
        "scaling_method": answer.scaling_method,
        "instances": answer.instances,
        "profile": body.decode(),
        "recommendation": answer.text,
        "engine_version": __version__,
    }


class RowSource:
    """Rows for one writer: made ahead of the window (``fill``), made on the spot (counted) if they run out."""

    def __init__(self, shared: dict[str, Any], name: str) -> None:
        self.shared, self.name = shared, name
        self.rows: list[Any] = []
        self.made = 0
        self.made_live = 0

    def make(self) -> Any:
        from uuid_utils.compat import uuid7

        from service.db import DecisionRow

        self.made += 1
        fields = {"id": uuid7(), "created_at": datetime.now(UTC), "request_id": f"{self.name}-{self.made}"}
        return DecisionRow(**self.shared, **fields)

    def fill(self, n: int) -> None:
        self.rows = [self.make() for _ in range(n)]
        self.rows.reverse()

    def next(self) -> Any:
        if self.rows:
            return self.rows.pop()
        self.made_live += 1
        return self.make()


# --- one process of writers -----------------------------------------------------------------------------------


def child_main(cfg: dict[str, Any], ready: Any, start: Any, stop: Any, results: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    results.put(asyncio.run(run_writers(cfg, ready, start, stop)))


def writer_snapshot(writers: list[Any]) -> dict[str, float]:
    from prometheus_client import REGISTRY

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "t": time.perf_counter(),
        "rows": sum(w.stats.rows for w in writers),
        "commits": sum(w.stats.batches for w in writers),
        "commit_s": REGISTRY.get_sample_value(f"{COMMIT_METRIC}_sum", COMMITTED) or 0.0,
        "commit_n": REGISTRY.get_sample_value(f"{COMMIT_METRIC}_count", COMMITTED) or 0.0,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


async def feed(writer: Any, source: RowSource, running: list[bool]) -> None:
    while running[0]:
        await writer.write(source.next())


async def run_writers(cfg: dict[str, Any], ready: Any, start: Any, stop: Any) -> dict[str, Any]:
    """Start ``cfg['writers']`` writers, warm up, fill the row sources, report ready, measure start to stop."""
    from service.db import create_engine
    from service.services.audit import AuditWriter
    from service.settings import Settings

    settings = Settings(database_url=cfg["url"], audit_batch_max_rows=cfg["batch"], audit_batch_max_wait_ms=0)
    engines = [create_engine(settings) for _ in range(cfg["writers"])]
    writers = [AuditWriter.from_settings(engine, settings) for engine in engines]
    sources = [RowSource(cfg["shared"], f"bench-{os.getpid()}-{i}") for i in range(cfg["writers"])]
    running = [True]
    tasks = [
        asyncio.create_task(feed(w, s, running))
        for w, s in zip(writers, sources, strict=True)
        for _ in range(cfg["depth"] * cfg["batch"])
    ]
    await asyncio.sleep(cfg["warmup_s"])
    warm_rows = sum(w.stats.rows for w in writers)
    per_writer = int(warm_rows / cfg["warmup_s"] / cfg["writers"] * cfg["seconds"] * 3) + cfg["batch"] * 4
    for source in sources:
        source.fill(per_writer)
    live_before = sum(s.made_live for s in sources)
    loop = asyncio.get_running_loop()
    ready.put(os.getpid())
    await loop.run_in_executor(None, start.wait)
    before = writer_snapshot(writers)
    await loop.run_in_executor(None, stop.wait)
    after = writer_snapshot(writers)
    live = sum(s.made_live for s in sources) - live_before
    running[0] = False
    await asyncio.gather(*tasks, return_exceptions=True)
    for writer in writers:
        await writer.stop()
    for engine in engines:
        await engine.dispose()
    window = {k: after[k] - before[k] for k in before}
    return window | {
        "rows_total": sum(w.stats.rows for w in writers),
        "failed_batches": sum(w.stats.failed_batches for w in writers),
        "contended": sum(w.stats.contended for w in writers),
        "rows_made_in_window": live,
        "chains": sorted(w.chain for w in writers),
    }


# --- Postgres -------------------------------------------------------------------------------------------------


async def pg_fetch(dsn: str, sql: str, *params: Any) -> list[Any]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return list(await conn.fetch(sql, *params))
    finally:
        await conn.close()


def q(sql: str, *params: Any, dsn: str = ADMIN_DSN) -> Any:
    """The first value of the first row (or None)."""
    found = asyncio.run(pg_fetch(dsn, sql, *params))
    return found[0][0] if found else None


def postgres_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of every process the ``postgres`` user runs, by pid."""
    pids = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True).stdout.split()
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in map(int, pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        out[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def pg_snapshot(database: str) -> dict[str, Any]:
    """WAL position, each postgres process's CPU, and which processes are this database's backends or shared
    background processes (walwriter, checkpointer, ...); the rest serve other databases on the same server."""
    sql = "SELECT pid, datname, pg_current_wal_lsn()::text AS lsn FROM pg_stat_activity"
    activity = asyncio.run(pg_fetch(ADMIN_DSN, sql))
    return {
        "lsn": activity[0]["lsn"],
        "cpu": postgres_cpu(),
        "ours": {r["pid"] for r in activity if r["datname"] == database},
        "shared": {r["pid"] for r in activity if r["datname"] is None},
        "t": time.perf_counter(),
    }


def cpu_split(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """CPU seconds Postgres spent between two snapshots: this database's backends, shared processes, the rest."""
    split = {"ours": 0.0, "shared": 0.0, "other": 0.0}
    for pid, cpu in after["cpu"].items():
        used = cpu - before["cpu"].get(pid, 0.0)
        kind = "ours" if pid in after["ours"] | before["ours"] else "shared" if pid in after["shared"] else "other"
        split[kind] += used
    return split


def wal_of(database_oid: int, start: str, end: str, data_dir: str) -> dict[str, int] | None:
    """WAL bytes between two positions written for this database (records on its relations and the commit
    records of their transactions, by ``pg_waldump``), and all of it; None if pg_waldump cannot read it."""
    waldump = Path("/usr/lib/postgresql/15/bin/pg_waldump")
    cmd = [str(waldump), "-p", f"{data_dir}/pg_wal", "-s", start, "-e", end]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None
    marker, ours_tx = f" rel 1663/{database_oid}/", set()
    total = ours = fpi = 0
    pending: list[tuple[str, int]] = []  # records without a relation of ours: commits, decided once all are read
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            sizes = line.split("len (rec/tot):", 1)[1].split(",", 2)
            rec, tot = (int(x) for x in sizes[0].split("/"))
            tx = sizes[1].split(":")[1].strip()
        except (IndexError, ValueError):
            continue
        total += tot
        if marker in line:
            ours += tot
            fpi += tot - rec
            ours_tx.add(tx)
        elif tx != "0":
            pending.append((tx, tot))
    proc.wait()
    ours += sum(tot for tx, tot in pending if tx in ours_tx)
    return {"ours": ours, "all_records": total, "full_page_images_ours": fpi} if total else None


# --- one point: W writers at batch B --------------------------------------------------------------------------


def run_point(args: argparse.Namespace, db: dict[str, Any], batch: int, writers: int) -> dict[str, Any]:
    q("CHECKPOINT")  # every point starts with the same pages written out
    procs = min(args.processes, writers)
    counts = [writers // procs + (i < writers % procs) for i in range(procs)]
    ctx = mp.get_context("spawn")
    ready, results, start, stop = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    cfg = {"url": db["url"], "batch": batch, "depth": args.depth, "shared": db["shared"]}
    cfg |= {"warmup_s": args.warmup, "seconds": args.seconds}
    children = [
        ctx.Process(target=child_main, args=(cfg | {"writers": n}, ready, start, stop, results)) for n in counts
    ]
    for child in children:
        child.start()
    for _ in children:
        ready.get(timeout=300)
    slot = f"{db['name']}_wal"  # keeps the window's WAL until pg_waldump has read it (others may CHECKPOINT)
    q("SELECT pg_create_physical_replication_slot($1, true)", slot)
    try:
        before = pg_snapshot(db["name"])
        start.set()
        time.sleep(args.seconds)
        stop.set()
        after = pg_snapshot(db["name"])
        load = loadavg()
        outs = [results.get(timeout=300) for _ in children]
        for child in children:
            child.join(timeout=60)
        return summarise(db, {"batch": batch, "writers": writers, "processes": procs}, before, after, outs) | {
            "loadavg_1m": load
        }
    finally:
        q("SELECT pg_drop_replication_slot($1)", slot)


def summarise(db: dict[str, Any], ident: dict[str, int], before: Any, after: Any, outs: list[Any]) -> dict[str, Any]:
    seconds = statistics.mean(o["t"] for o in outs)
    rows, commits = sum(o["rows"] for o in outs), sum(o["commits"] for o in outs)
    cpu = cpu_split(before, after)
    wal = wal_of(db["oid"], before["lsn"], after["lsn"], db["data_dir"])
    lsn_bytes = int(q("SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)", after["lsn"], before["lsn"]))
    attributed = cpu["ours"] + cpu["shared"]
    sums = {k: sum(o[k] for o in outs) for k in outs[0] if k not in ("t", "chains")}
    per_row, per_commit = 1 / max(1, rows), 1 / max(1, commits)
    return (
        sums
        | ident
        | {
            "seconds": round(seconds, 3),
            "pg_cpu_s": cpu,
            "commits_per_s": commits / seconds,
            "rows_per_s": rows / seconds,
            "wal": wal,
            "mean_commit_ms": 1000 * sums["commit_s"] / max(1, sums["commit_n"]),
            "pg_cpu_ms_per_commit": 1000 * attributed * per_commit,
            "pg_cpu_us_per_row": 1e6 * attributed * per_row,
            "pg_cpu_all_us_per_row": 1e6 * sum(cpu.values()) * per_row,
            "other_pg_cpu_cores": cpu["other"] / seconds,
            "wal_lsn_bytes_per_row": lsn_bytes * per_row,
            "wal_ours_bytes_per_row": None if wal is None else wal["ours"] * per_row,
            "client_cpu_cores": sums["cpu_s"] / seconds,
            "client_cpu_cores_per_process": max(o["cpu_s"] for o in outs) / seconds,
        }
    )


# --- the table and the extrapolation --------------------------------------------------------------------------


def table(points: list[dict[str, Any]]) -> str:
    head = (
        "| B | W | procs | commits/s | rows/s | mean commit ms | PG CPU ms/commit | PG CPU µs/row | all-PG CPU µs/row "
        "| other PG work, cores | WAL B/row (this db) | WAL B/row (LSN) | client CPU, cores | load 1m |"
    )
    lines = [head, "|" + "---|" * 14]
    for p in points:
        wal = "n/a" if p["wal_ours_bytes_per_row"] is None else f"{p['wal_ours_bytes_per_row']:,.0f}"
        lines.append(
            f"| {p['batch']} | {p['writers']} | {p['processes']} | {p['commits_per_s']:,.0f} | {p['rows_per_s']:,.0f} "
            f"| {p['mean_commit_ms']:.2f} | {p['pg_cpu_ms_per_commit']:.3f} | {p['pg_cpu_us_per_row']:.0f} "
            f"| {p['pg_cpu_all_us_per_row']:.0f} | {p['other_pg_cpu_cores']:.2f} | {wal} "
            f"| {p['wal_lsn_bytes_per_row']:,.0f} | {p['client_cpu_cores']:.2f} | {p['loadavg_1m']:.2f} |"
        )
    return "\n".join(lines)


def extrapolate(points: list[dict[str, Any]], per_replica_rps: float) -> list[dict[str, Any]]:
    """Per batch size: decisions/s that 1, 4 and 8 Postgres cores would sustain at the measured CPU per row (median
    over the writer counts), the WAL that makes, and how many replicas at ``per_replica_rps`` each that is."""
    out = []
    for batch in sorted({p["batch"] for p in points}):
        at = [p for p in points if p["batch"] == batch]
        spread = [p["pg_cpu_us_per_row"] for p in at]
        us = statistics.median(spread)
        wals = [p["wal_ours_bytes_per_row"] or p["wal_lsn_bytes_per_row"] for p in at]
        wal = statistics.median(wals)
        latency = statistics.median(p["mean_commit_ms"] for p in at)
        for cores in (1, 4, 8):
            rate = cores * 1e6 / us
            out.append(
                {
                    "batch": batch,
                    "cores": cores,
                    "pg_cpu_us_per_row": round(us, 1),
                    "pg_cpu_us_per_row_range": [round(min(spread), 1), round(max(spread), 1)],
                    "decisions_per_s": round(rate),
                    "wal_mib_per_s": round(rate * wal / 2**20, 1),
                    "replicas": round(rate / per_replica_rps, 1),
                    "batch_formed_per_replica": round(per_replica_rps * latency / 1000, 1),
                }
            )
    return out


def print_extrapolation(found: list[dict[str, Any]], per_replica_rps: float) -> None:
    print(
        f"\nExtrapolated (not measured): Postgres CPU per row ÷ into cores, linear; replicas at --per-replica-rps "
        f"{per_replica_rps:g} (an input: one worker's audited decisions/s from bench/http_bench.py)\n"
    )
    print("| B | PG CPU µs/row (median, range over W) | cores | decisions/s | WAL MiB/s | replicas |")
    print("|---|---|---|---|---|---|")
    for e in found:
        low, high = e["pg_cpu_us_per_row_range"]
        print(
            f"| {e['batch']} | {e['pg_cpu_us_per_row']:.0f} ({low:.0f} to {high:.0f}) | {e['cores']} "
            f"| {e['decisions_per_s']:,} | {e['wal_mib_per_s']:.1f} | {e['replicas']:.1f} |"
        )
    for e in (e for e in found if e["cores"] == 1):
        print(
            f"- B={e['batch']}: a replica at {per_replica_rps:g}/s with this machine's commit latency would form "
            f"batches of about {e['batch_formed_per_replica']} rows by itself (rate x commit latency)"
        )


# --- setup, verification, main --------------------------------------------------------------------------------


async def seed_ruleset(url: str) -> None:
    """Store the shipped ruleset the way the service does (decisions reference rulesets.sha256)."""
    from service.db import create_engine
    from service.rulebook.loader import load_ruleset
    from service.services.activation import Activator
    from service.services.registry import RulesetRegistry
    from service.settings import Settings

    engine = create_engine(Settings(database_url=url))
    try:
        await Activator(engine, RulesetRegistry(engine)).activate(load_ruleset(ROOT / "rules"), by="bench")
    finally:
        await engine.dispose()


def verify(url: str, env: dict[str, str], dsn: str, committed: int) -> dict[str, Any]:
    done = subprocess.run(
        [str(BIN / "advisor"), "audit", "verify"],
        cwd=ROOT,
        env=env | {"ADVISOR_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    stored = int(q("SELECT count(*) FROM decisions", dsn=dsn))
    return {
        "exit_code": done.returncode,
        "output": (done.stdout + done.stderr).strip(),
        "rows_stored": stored,
        "rows_committed_by_writers": committed,
        "match": stored == committed,
    }


def numbers(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("every value must be at least 1")
    return values


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=numbers, default=[1, 2, 4, 8, 16], help="writer counts (1,2,4,8,16)")
    parser.add_argument("--batch", type=numbers, default=[8], help="rows per commit, one or a list such as 1,8,32")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per point (10)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per point, discarded (2)")
    parser.add_argument("--processes", type=int, default=1, help="client processes the writers are spread over (1)")
    parser.add_argument(
        "--depth", type=int, default=2, help="tasks per writer, in batches (2: one queued, one in flight)"
    )
    parser.add_argument("--per-replica-rps", type=float, default=4000, help="input for the replica count (4000)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    shown = {name: q(f"SHOW {name}") for name in SETTINGS_SHOWN}
    record: dict[str, Any] = {
        "kind": "pg-writers",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "commit": {"sha": git("rev-parse", "HEAD"), "short": git("rev-parse", "--short", "HEAD")},
        "postgres": shown,
        "settings": vars(args) | {"loadavg_1m_at_start": loadavg()},
    }
    print("postgres: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    shared = real_answer()
    record["row"] = {"profile_bytes": len(shared["profile"]), "recommendation_bytes": len(shared["recommendation"])}
    print(f"rows: profile {record['row']['profile_bytes']} B, recommendation {record['row']['recommendation_bytes']} B")
    with bench_database(ADMIN_DSN, env) as (dsn, url):
        name = dsn.rsplit("/", 1)[1]
        asyncio.run(seed_ruleset(url))
        oid = q("SELECT oid FROM pg_database WHERE datname = $1", name)
        db = {"url": url, "name": name, "oid": int(oid), "data_dir": shown["data_directory"], "shared": shared}
        points = []
        for batch in args.batch:
            for writers in args.writers:
                points.append(run_point(args, db, batch, writers))
                p = points[-1]
                print(
                    f"B={batch} W={writers}: {p['rows_per_s']:,.0f} rows/s, {p['pg_cpu_us_per_row']:.0f} µs PG CPU/row"
                )
        record["points"] = points
        record["verify"] = verify(url, env, dsn, sum(p["rows_total"] for p in points))
    print("\n" + table(points))
    record["extrapolation"] = extrapolate(points, args.per_replica_rps)
    print_extrapolation(record["extrapolation"], args.per_replica_rps)
    v = record["verify"]
    print(f"\nadvisor audit verify: exit {v['exit_code']}: {v['output']}")
    print(
        f"rows stored {v['rows_stored']}, committed by the writers {v['rows_committed_by_writers']}: "
        + ("match" if v["match"] else "DO NOT MATCH")
    )
    path = save(record, "pg-writers")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0 if v["exit_code"] == 0 and v["match"] else 1


if __name__ == "__main__":
    sys.exit(main())
