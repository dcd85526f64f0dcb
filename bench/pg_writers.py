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
import msgspec
from benchkit import BIN, ROOT, bench_database, git, loadavg, machine, worked_example
from http_report import save
from prometheus_client import REGISTRY
from uuid_utils.compat import uuid7

from service import __version__
from service.contract import WorkloadProfile
from service.db import DecisionRow, create_engine
from service.engine import compile_ruleset
from service.engine.memo import RecommendationMemo
from service.rulebook.loader import load_ruleset
from service.services.activation import Activator
from service.services.audit import AuditWriter
from service.services.registry import RulesetRegistry
from service.settings import Settings

ADMIN_DSN = os.environ.get("ADVISOR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SETTINGS_SHOWN = ("server_version", "synchronous_commit", "fsync", "wal_level", "full_page_writes")
SETTINGS_SHOWN += ("wal_compression", "wal_sync_method", "commit_delay", "shared_buffers", "data_directory")
COMMIT_METRIC = "advisor_audit_commit_duration_seconds"


def real_answer() -> dict[str, Any]:
    """The fields every row shares: the worked example's body and the shipped rules' answer to it."""
    body = worked_example()
    ruleset = compile_ruleset(load_ruleset(ROOT / "rules"))
    answer = RecommendationMemo().get(msgspec.json.decode(body, type=WorkloadProfile), ruleset)
    fields = {name: getattr(answer, name) for name in ("family", "instance_type", "scaling_method", "instances")}
    fields |= {"ruleset_sha256": ruleset.sha256, "ruleset_version": ruleset.version, "caller": "bench"}
    return fields | {"profile": body.decode(), "recommendation": answer.text, "engine_version": __version__}


class RowSource:
    """Rows for one writer: made ahead of the window (``fill``), made on the spot (counted) if they run out."""

    def __init__(self, shared: dict[str, Any], name: str) -> None:
        self.shared, self.name, self.rows, self.made, self.made_live = shared, name, [], 0, 0

    def make(self) -> Any:
        self.made += 1
        at, request_id = datetime.now(UTC), f"{self.name}-{self.made}"
        return DecisionRow(**self.shared, id=uuid7(), created_at=at, request_id=request_id)

    def fill(self, n: int) -> None:
        self.rows = [self.make() for _ in range(n)][::-1]

    def next(self) -> Any:
        if self.rows:
            return self.rows.pop()
        self.made_live += 1
        return self.make()


def child_main(cfg: dict[str, Any], ready: Any, events: tuple[Any, Any, Any], results: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    results.put(asyncio.run(run_writers(cfg, ready, *events)))


def writer_snapshot(writers: list[Any]) -> dict[str, float]:
    usage, value = resource.getrusage(resource.RUSAGE_SELF), REGISTRY.get_sample_value
    rows, commits = sum(w.stats.rows for w in writers), sum(w.stats.batches for w in writers)
    found = {"t": time.perf_counter(), "rows": rows, "commits": commits, "cpu_s": usage.ru_utime + usage.ru_stime}
    commit_s, commit_n = (value(f"{COMMIT_METRIC}_{k}", {"outcome": "committed"}) for k in ("sum", "count"))
    return found | {"commit_s": commit_s or 0.0, "commit_n": commit_n or 0.0}


async def feed(writer: Any, source: RowSource, running: list[bool]) -> None:
    while running[0]:
        await writer.write(source.next())


async def run_writers(cfg: dict[str, Any], ready: Any, start: Any, stop: Any, release: Any) -> dict[str, Any]:
    """Start ``cfg['writers']`` writers, warm up, fill the row sources, report ready, measure start to stop; keep
    the connections until ``release`` (the backends must outlive the parent's last look at their CPU time)."""
    settings = Settings(database_url=cfg["url"], audit_batch_max_rows=cfg["batch"], audit_batch_max_wait_ms=0)
    engines = [create_engine(settings) for _ in range(cfg["writers"])]
    writers = [AuditWriter.from_settings(engine, settings) for engine in engines]
    sources = [RowSource(cfg["shared"], f"bench-{os.getpid()}-{i}") for i in range(cfg["writers"])]
    running, per, pairs = [True], cfg["depth"] * cfg["batch"], list(zip(writers, sources, strict=True))
    tasks = [asyncio.create_task(feed(w, s, running)) for w, s in pairs for _ in range(per)]
    await asyncio.sleep(cfg["warmup_s"])
    warm_rows = sum(w.stats.rows for w in writers)
    per_writer = int(warm_rows / cfg["warmup_s"] / cfg["writers"] * cfg["seconds"] * 3) + cfg["batch"] * 4
    for source in sources:
        source.fill(per_writer)
    live_before, loop = sum(s.made_live for s in sources), asyncio.get_running_loop()
    ready.put(os.getpid())
    await loop.run_in_executor(None, start.wait)
    before = writer_snapshot(writers)
    await loop.run_in_executor(None, stop.wait)
    after = writer_snapshot(writers)
    live = sum(s.made_live for s in sources) - live_before
    await loop.run_in_executor(None, release.wait)
    running[0] = False
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(writer.stop() for writer in writers))
    await asyncio.gather(*(engine.dispose() for engine in engines))
    totals = {f"{k}_total": sum(getattr(w.stats, k) for w in writers) for k in ("rows", "failed_batches", "contended")}
    return {k: after[k] - before[k] for k in before} | totals | {"rows_made_in_window": live}


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
    """CPU seconds of every process the ``postgres`` user runs, by pid: the scheduler's run time
    (``/proc/<pid>/schedstat``, ns), exact where utime + stime of ``/proc/<pid>/stat`` come in 10 ms ticks."""
    out = {}
    for pid in map(int, subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True).stdout.split()):
        try:
            out[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
        except OSError:
            continue  # ended meanwhile
    return out


def pg_snapshot(database: str) -> dict[str, Any]:
    """WAL position, each postgres process's CPU, and which processes are this database's backends, shared
    background processes (walwriter, checkpointer, ...) or autovacuum workers; the rest serve other databases."""
    sql = "SELECT pid, datname, backend_type, pg_current_wal_lsn()::text AS lsn FROM pg_stat_activity"
    activity = asyncio.run(pg_fetch(ADMIN_DSN, sql))
    kinds = {r["pid"]: "autovacuum" for r in activity if r["backend_type"] == "autovacuum worker"}
    kinds |= {r["pid"]: "shared" for r in activity if r["datname"] is None}
    kinds |= {r["pid"]: "ours" for r in activity if r["datname"] == database and r["backend_type"] == "client backend"}
    return {"lsn": activity[0]["lsn"], "cpu": postgres_cpu(), "kinds": kinds}


def cpu_split(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """CPU seconds Postgres spent between two snapshots, by kind of process (``pg_snapshot``)."""
    split = {"ours": 0.0, "shared": 0.0, "autovacuum": 0.0, "other": 0.0}
    for pid, cpu in after["cpu"].items():
        split[(before["kinds"] | after["kinds"]).get(pid, "other")] += cpu - before["cpu"].get(pid, 0.0)
    return split


def wal_of(database_oid: int, start: str, end: str, data_dir: str) -> dict[str, int] | None:
    """WAL bytes between two positions written for this database (records on its relations and the commit
    records of their transactions, by ``pg_waldump``), and all of it; None if pg_waldump cannot read it."""
    waldump = Path("/usr/lib/postgresql/15/bin/pg_waldump")
    if not waldump.exists():
        return None
    cmd = [str(waldump), "-p", f"{data_dir}/pg_wal", "-s", start, "-e", end]
    marker, ours_tx, total, ours, fpi = f" rel 1663/{database_oid}/", set(), 0, 0, 0
    pending: list[tuple[str, int]] = []  # records without a relation of ours: commits, decided once all are read
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        for line in proc.stdout or ():
            head, _, rest = line.partition(", lsn:")
            try:  # "rmgr: Heap len (rec/tot): 54/ 54, tx: 735" and the rest
                rec, tot = (int(x) for x in head.split("len (rec/tot):")[1].split(",")[0].split("/"))
                tx = head.rsplit("tx:", 1)[1].strip()
            except (IndexError, ValueError):
                continue
            total += tot
            if marker in rest:
                ours, fpi = ours + tot, fpi + tot - rec
                ours_tx.add(tx)
            elif tx != "0":
                pending.append((tx, tot))
    ours += sum(tot for tx, tot in pending if tx in ours_tx)
    return {"ours": ours, "all_records": total, "full_page_images_ours": fpi} if total else None


def run_point(args: argparse.Namespace, db: dict[str, Any], batch: int, writers: int) -> dict[str, Any]:
    q("CHECKPOINT")  # every point starts with the same pages written out
    procs = min(args.processes, writers)
    counts = [writers // procs + (i < writers % procs) for i in range(procs)]
    ctx = mp.get_context("spawn")  # each child starts clean: no forked event loop or connection
    ready, results, events = ctx.Queue(), ctx.Queue(), (ctx.Event(), ctx.Event(), ctx.Event())
    cfg = {"url": db["url"], "batch": batch, "depth": args.depth, "shared": db["shared"]}
    cfg |= {"warmup_s": args.warmup, "seconds": args.seconds}
    args_of = [(cfg | {"writers": n}, ready, events, results) for n in counts]
    children = [ctx.Process(target=child_main, args=a, daemon=True) for a in args_of]  # ended if this one fails
    for child in children:
        child.start()
    [ready.get(timeout=300) for _ in children]  # every writer warmed up and its rows made
    slot = f"{db['name']}_wal"  # keeps the window's WAL until pg_waldump has read it (others may CHECKPOINT)
    q("SELECT pg_create_physical_replication_slot($1, true)", slot)
    try:
        before = pg_snapshot(db["name"])
        events[0].set()  # start
        time.sleep(args.seconds)
        events[1].set()  # stop
        after, load = pg_snapshot(db["name"]), loadavg()
        events[2].set()  # release
        outs = [results.get(timeout=300) for _ in children]
        for child in children:
            child.join(timeout=60)
        ident = {"batch": batch, "writers": writers, "processes": procs, "loadavg_1m": load}
        return summarise(db, ident, before, after, outs)
    finally:
        q("SELECT pg_drop_replication_slot($1)", slot)


def summarise(db: dict[str, Any], ident: dict[str, Any], before: Any, after: Any, outs: list[Any]) -> dict[str, Any]:
    seconds = statistics.mean(o["t"] for o in outs)
    rows, commits = sum(o["rows"] for o in outs), sum(o["commits"] for o in outs)
    cpu = cpu_split(before, after)
    wal = wal_of(db["oid"], before["lsn"], after["lsn"], db["data_dir"])
    lsn_bytes = int(q("SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)", after["lsn"], before["lsn"]))
    attributed = cpu["ours"] + cpu["shared"]
    sums = {k: sum(o[k] for o in outs) for k in outs[0] if k != "t"}
    r, c = max(1, rows), max(1, commits)
    derived = {"seconds": round(seconds, 3), "commits_per_s": commits / seconds, "rows_per_s": rows / seconds}
    derived |= {"mean_commit_ms": 1000 * sums["commit_s"] / max(1, sums["commit_n"]), "pg_cpu_s": cpu, "wal": wal}
    derived |= {"pg_cpu_ms_per_commit": 1000 * attributed / c, "pg_cpu_us_per_row": 1e6 * attributed / r}
    derived |= {
        "pg_backend_cpu_us_per_row": 1e6 * cpu["ours"] / r,
        "pg_cpu_all_us_per_row": 1e6 * sum(cpu.values()) / r,
    }
    derived |= {
        "other_pg_cpu_cores": (cpu["other"] + cpu["autovacuum"]) / seconds,
        "wal_lsn_bytes_per_row": lsn_bytes / r,
    }
    derived |= {"wal_ours_bytes_per_row": None if wal is None else wal["ours"] / r}
    derived |= {
        "client_cpu_cores": sums["cpu_s"] / seconds,
        "client_cpu_cores_per_process": max(o["cpu_s"] for o in outs) / seconds,
    }
    return sums | ident | derived


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
        us = statistics.median(spread := [p["pg_cpu_us_per_row"] for p in at])
        wal = statistics.median(p["wal_ours_bytes_per_row"] or p["wal_lsn_bytes_per_row"] for p in at)
        latency = statistics.median(p["mean_commit_ms"] for p in at)
        for cores in (1, 4, 8):
            rate = cores * 1e6 / us
            found = {"batch": batch, "cores": cores, "pg_cpu_us_per_row": round(us, 1), "decisions_per_s": round(rate)}
            found["pg_cpu_us_per_row_range"] = [round(min(spread), 1), round(max(spread), 1)]
            found |= {"wal_mib_per_s": round(rate * wal / 2**20, 1), "replicas": round(rate / per_replica_rps, 1)}
            out.append(found | {"batch_formed_per_replica": round(per_replica_rps * latency / 1000, 1)})
    return out


def print_extrapolation(found: list[dict[str, Any]], points: list[dict[str, Any]], per_replica_rps: float) -> None:
    rate = f"{per_replica_rps:g}"
    print(f"\nExtrapolated, not measured: Postgres CPU per row into 1, 4, 8 cores, linearly; replicas at {rate}")
    print("decisions/s each (--per-replica-rps, an input: one worker's audited rate from bench/http_bench.py)\n")
    print(
        "| B | PG CPU µs/row (median, range over W) | cores | decisions/s | WAL MiB/s | replicas |\n" + "|---" * 6 + "|"
    )
    for e in found:
        low, high = e["pg_cpu_us_per_row_range"]
        print(
            f"| {e['batch']} | {e['pg_cpu_us_per_row']:.0f} ({low:.0f} to {high:.0f}) | {e['cores']} "
            f"| {e['decisions_per_s']:,} | {e['wal_mib_per_s']:.1f} | {e['replicas']:.1f} |"
        )
    for e in (e for e in found if e["cores"] == 1):
        formed = e["batch_formed_per_replica"]
        print(f"- B={e['batch']}: at {rate}/s and this machine's commit latency a replica forms {formed}-row batches")
    if len({p["batch"] for p in points}) > 1:  # CPU per commit = fixed + per row x B, least squares over every point
        fit = statistics.linear_regression([p["batch"] for p in points], [p["pg_cpu_ms_per_commit"] for p in points])
        print(
            f"- Postgres CPU per commit ≈ {1000 * fit.intercept:.0f} µs + {1000 * fit.slope:.0f} µs x rows (all points)"
        )


async def seed_ruleset(url: str) -> None:
    """Store the shipped ruleset the way the service does (decisions reference rulesets.sha256)."""
    engine = create_engine(Settings(database_url=url))
    try:
        await Activator(engine, RulesetRegistry(engine)).activate(load_ruleset(ROOT / "rules"), by="bench")
    finally:
        await engine.dispose()


def verify(url: str, env: dict[str, str], dsn: str, committed: int) -> dict[str, Any]:
    cmd, env = [str(BIN / "advisor"), "audit", "verify"], env | {"ADVISOR_DATABASE_URL": url}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    stored = int(q("SELECT count(*) FROM decisions", dsn=dsn))
    size = q("SELECT avg(pg_column_size(recommendation))::int FROM decisions", dsn=dsn)  # after pglz (TOAST)
    found = {"exit_code": done.returncode, "output": (done.stdout + done.stderr).strip(), "rows_stored": stored}
    return found | {"rows_committed_by_writers": committed, "match": stored == committed, "stored_size": size}


def numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=numbers, default=[1, 2, 4, 8, 16], help="writer counts (1,2,4,8,16)")
    parser.add_argument("--batch", type=numbers, default=[8], help="rows per commit, one or a list such as 1,8,32")
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per point (10)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per point, discarded (2)")
    parser.add_argument("--processes", type=int, default=1, help="client processes the writers are spread over (1)")
    parser.add_argument("--depth", type=int, default=2, help="tasks per writer, in batches (2)")
    parser.add_argument("--per-replica-rps", type=float, default=4000, help="input for the replica count (4000)")
    args = parser.parse_args()
    if min(args.writers + args.batch + [args.processes, args.depth]) < 1 or args.seconds <= 0 or args.warmup <= 0:
        parser.error("--writers, --batch, --processes and --depth must be at least 1, --seconds and --warmup above 0")
    return args


def main() -> int:
    args = parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    shown = {name: q(f"SHOW {name}") for name in SETTINGS_SHOWN}
    record: dict[str, Any] = {"kind": "pg-writers", "date": datetime.now(UTC).isoformat(timespec="seconds")}
    record["commit"] = {"sha": git("rev-parse", "HEAD"), "short": git("rev-parse", "--short", "HEAD")}
    record |= {"machine": machine(), "postgres": shown, "settings": vars(args) | {"loadavg_1m_at_start": loadavg()}}
    print("postgres: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    shared = real_answer()
    row = {"profile_bytes": len(shared["profile"]), "recommendation_bytes": len(shared["recommendation"])}
    record["row"] = row
    print(
        f"rows: profile {row['profile_bytes']} B, recommendation {row['recommendation_bytes']} B (the worked example)"
    )
    with bench_database(ADMIN_DSN, env) as (dsn, url):
        name = dsn.rsplit("/", 1)[1]
        asyncio.run(seed_ruleset(url))
        # A fresh table is vacuumed every few thousand rows, a large one rarely: keep that out of the per-row cost.
        q("ALTER TABLE decisions SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)", dsn=dsn)
        oid = q("SELECT oid FROM pg_database WHERE datname = $1", name)
        db = {"url": url, "name": name, "oid": int(oid), "data_dir": shown["data_directory"], "shared": shared}
        points = []
        for batch in args.batch:
            for writers in args.writers:
                points.append(p := run_point(args, db, batch, writers))
                print(f"B={batch} W={writers}: {p['rows_per_s']:,.0f} rows/s, {p['pg_cpu_us_per_row']:.0f} µs PG/row")
        record["points"] = points
        record["verify"] = verify(url, env, dsn, sum(p["rows_total"] for p in points))
    print("\n" + table(points))
    record["extrapolation"] = extrapolate(points, args.per_replica_rps)
    print_extrapolation(record["extrapolation"], points, args.per_replica_rps)
    v = record["verify"]
    print(f"\nadvisor audit verify: exit {v['exit_code']}: {v['output']}")
    verdict = "match" if v["match"] else "DO NOT MATCH"
    print(f"rows stored {v['rows_stored']}, committed by the writers {v['rows_committed_by_writers']}: {verdict}")
    print(f"a recommendation is stored in {v['stored_size']} B (pg_column_size: compressed, out of line)")
    path = save(record, "pg-writers")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0 if v["exit_code"] == 0 and v["match"] else 1


if __name__ == "__main__":
    sys.exit(main())
