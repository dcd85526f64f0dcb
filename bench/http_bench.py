"""HTTP benchmark: the advisor with its Postgres audit against a bare Litestar ceiling and a naive-audit floor.

Run (from the repository root; Postgres on 127.0.0.1:5432, Debian's wrk installed):

    .venv/bin/python bench/http_bench.py                 # ceiling, advisor (x3), floor: ~2 min, prints a table
    .venv/bin/python bench/http_bench.py --workers 2     # the same with two uvicorn workers per server
    .venv/bin/python bench/http_bench.py --memory        # RSS of one advisor worker: start-up vs 100,000 decisions

Five servers, each started as a subprocess on a free loopback port, all up for the whole run, stopped at the end:

* ``bare``: ``bench/bare_app.py``, one Litestar endpoint decoding the same ``WorkloadProfile`` body with msgspec,
  under the same server (uvicorn, the flags of ``advisor serve``) and the same worker count: the ceiling.
* ``advisor``: ``advisor serve`` with the default group-commit audit (``ADVISOR_AUDIT_BATCH_MAX_ROWS`` /
  ``ADVISOR_AUDIT_BATCH_MAX_WAIT_MS`` unset), the one body repeated (answered from the memo of recent profiles).
* ``logged``: the same with ``ADVISOR_LOG_LEVEL=INFO``, the service's default: one JSON access-log line per request
  (to a file). Every other variant runs at ``WARNING``, so without access lines.
* ``distinct``: the same as ``advisor``, every request another profile (``peak_rps`` varies), so the engine
  evaluates each one.
* ``naive``: ``advisor serve`` with ``ADVISOR_AUDIT_BATCH_MAX_ROWS=1`` and ``ADVISOR_AUDIT_BATCH_MAX_WAIT_MS=0``:
  one transaction (one INSERT, one commit) per decision: the floor.

Each advisor variant gets a fresh database ``advisor_bench_<hex>`` (created, migrated with ``advisor db upgrade``,
dropped at the end) and runs in local mode (no API keys: loopback only, no rate limit). Load: wrk (Debian's
package; one thread, which saturates one core) with ``bench/post_profile.lua`` POSTing the worked example: a
warm-up run per server whose figures are discarded, then ``--rounds`` rounds that give each server one slice of
the measured seconds, the order turning by one server a round, so that the machine's slow and fast spells (they
come and go within seconds on a shared host) fall on every server alike. A row adds up its slices; its
percentiles come from wrk's latency histograms of all its slices, merged. On a machine with two or more cores the
servers are pinned to all cores but the last and wrk to the last (``taskset``); Postgres is not pinned.

At the end the new rows of each advisor variant's ``decisions`` are counted and compared with its 2xx answers; see
bench/README.md for how to read the table and the JSON written to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchkit import (  # bench/benchkit.py: this script's directory is first on sys.path
    BENCH,
    BIN,
    ROOT,
    WRK_TIMEOUT_S,
    Load,
    Server,
    audit_commit_totals,
    audit_defaults,
    audit_transactions,
    bench_database,
    cpu_seconds,
    fail,
    git,
    loadavg,
    machine,
    pg,
    pinning,
    require_tools,
    rss_kib,
    run_wrk,
    settled_count,
    start_server,
    stop_server,
    versions,
    worked_example,
)

RESULTS = BENCH / "results"
VARIANTS = ("bare", "advisor", "logged", "distinct", "naive")

# Targets from the issue: reported, never asserted.
TARGET_RPS_RATIO = 0.70
TARGET_P99_RATIO = 3.0
TARGET_RSS_RATIO = 1.5


# --- one variant ----------------------------------------------------------------------------------------------


def base_env() -> dict[str, str]:
    """The caller's environment without any ADVISOR_* (no API keys, no database URL leak into the servers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    return env | {
        "ADVISOR_LOG_LEVEL": "WARNING",
        "ADVISOR_RULES_DIR": str(ROOT / "rules"),
        "ADVISOR_MIGRATE_ON_START": "false",
        "PYTHONUNBUFFERED": "1",
    }


VARIANT_ENV = {
    "advisor": {},
    "logged": {"ADVISOR_LOG_LEVEL": "INFO"},  # the service's default: one JSON access line per request
    "distinct": {},
    "naive": {"ADVISOR_AUDIT_BATCH_MAX_ROWS": "1", "ADVISOR_AUDIT_BATCH_MAX_WAIT_MS": "0"},
}
LABELS = {
    "bare": "bare Litestar (ceiling)",
    "advisor": "advisor, group-commit audit",
    "logged": "advisor, group-commit audit, access log on (INFO)",
    "distinct": "advisor, group-commit audit, every profile distinct",
    "naive": "advisor, 1 INSERT/request (floor)",
}


def audit_check(ok_2xx: int, in_flight: int, rows: int) -> dict[str, Any]:
    """Rows must cover every 2xx wrk saw; the only rows allowed beyond are those of requests in flight at stop."""
    lost = max(0, ok_2xx - rows)
    extra = max(0, rows - ok_2xx)
    if lost:
        verdict = f"LOST {lost} ROW(S)"
    elif extra > in_flight:
        verdict = f"{extra - in_flight} UNEXPLAINED ROW(S)"
    elif extra == in_flight:
        verdict = "ok (exact)"
    else:
        verdict = f"ok ({in_flight - extra} in flight not stored)"
    return {
        "audit_rows": rows,
        "answered_after_stop": extra,
        "lost_rows": lost,
        "unexplained_rows": max(0, extra - in_flight),
        "verdict": verdict,
    }


@dataclass
class Running:
    """One server of the table, up for the whole run; its slices of load are added up by ``finish_variant``."""

    name: str
    server: Server
    dsn: str | None
    server_env: dict[str, str]
    rss_start: dict[int, int]
    load_before: float
    rows_before: int
    commits_before: int
    sent: int = 0  # requests sent so far, warm-up included: where the distinct variant's profiles go on from
    slices: list[dict[str, Any]] = field(default_factory=list)


def start_variant(
    name: str, args: argparse.Namespace, load: Load, server_prefix: list[str], logdir: Path, stack: contextlib.ExitStack
) -> Running:
    """Start the variant's server (and database), warm it up, and note the counters its slices start from."""
    print(f"\n== {name}: {LABELS[name]} ({args.workers} worker(s))", flush=True)
    env = base_env()
    dsn = None
    if name == "bare":
        cmd = [*server_prefix, sys.executable, str(BENCH / "bare_app.py")]
        server_env = env
    else:
        dsn, url = stack.enter_context(bench_database(args.pg, env))
        server_env = env | VARIANT_ENV[name] | {"ADVISOR_DATABASE_URL": url}
        cmd = [*server_prefix, str(BIN / "advisor"), "serve"]
    server = start_server(cmd, server_env, args.workers, logdir, name)
    stack.callback(stop_server, server)
    rss_start = {pid: rss_kib(pid) for pid in server.worker_pids}
    load_before = loadavg()
    sent = 0
    if args.warmup > 0:
        warm = run_wrk(load, server.port, args.warmup, vary=name == "distinct")
        sent = warm["sent"] + 1  # and wrk's check call of request(), which counts too
        print(f"   warm-up {args.warmup:g} s: {warm['requests_per_s']:.0f} req/s (discarded)", flush=True)
    return Running(
        name,
        server,
        dsn,
        server_env,
        rss_start,
        load_before,
        rows_before=settled_count(dsn) if dsn else 0,
        commits_before=audit_transactions(dsn) if dsn else 0,
        sent=sent,
    )


def measure_slice(running: Running, load: Load, seconds: float) -> dict[str, Any]:
    """One slice of load on a running variant, with the worker CPU and audit commit time it took."""
    server = running.server
    busy_before = audit_commit_totals(server.port) if running.dsn else (0.0, 0.0)
    cpu_before = cpu_seconds(server.worker_pids)
    result = run_wrk(load, server.port, seconds, vary=running.name == "distinct", vary_offset=running.sent)
    result["cpu_s"] = cpu_seconds(server.worker_pids) - cpu_before
    running.sent += result["sent"] + 1
    busy_after = audit_commit_totals(server.port) if running.dsn else (0.0, 0.0)
    result["commit_s"], result["commit_batches"] = busy_after[0] - busy_before[0], busy_after[1] - busy_before[1]
    if server.proc.poll() is not None:
        raise RuntimeError(f"{running.name} server died during the run:\n{server.log_tail()}")
    if result["non_2xx"] or result["socket_errors"]:
        print(
            f"   !! {running.name}: {result['non_2xx']} non-2xx, {result['socket_errors']} socket errors; server log:"
        )
        print(server.log_tail())
    running.slices.append(result)
    return result


def merged_latency_ms(slices: list[dict[str, Any]]) -> dict[str, float]:
    """Percentiles over every response of every slice (wrk's histograms added up; wrk's own percentile rule)."""
    counts: dict[int, int] = {}
    for piece in slices:
        for value, count in piece["histogram"]:
            counts[value] = counts.get(value, 0) + count
    values = sorted(counts)
    total = sum(counts.values())
    if not total:
        return dict.fromkeys(("min", "mean", "p50", "p90", "p99", "p999", "max"), 0.0)

    def percentile(p: float) -> float:
        rank = math.floor(p / 100 * total + 1)  # wrk's stats_percentile: round(p / 100 * count + 0.5)
        seen = 0
        for value in values:
            seen += counts[value]
            if seen >= rank:
                return value / 1000
        return values[-1] / 1000

    mean = sum(v * c for v, c in counts.items()) / total
    return {
        "min": values[0] / 1000,
        "mean": round(mean / 1000, 3),
        "p50": percentile(50),
        "p90": percentile(90),
        "p99": percentile(99),
        "p999": percentile(99.9),
        "max": values[-1] / 1000,
    }


def finish_variant(running: Running, args: argparse.Namespace) -> dict[str, Any]:
    """The variant's row: its slices added up, its audit rows counted and checked."""
    slices, server = running.slices, running.server
    total = {key: sum(piece[key] for piece in slices) for key in _SUMMED}
    # Shares of wrk's measured seconds (the server is idle while wrk starts and reports).
    measured = total["duration_s"] or 1.0
    result: dict[str, Any] = total | {
        "duration_s": round(total["duration_s"], 3),
        "requests_per_s": round(total["requests"] / total["duration_s"], 1) if total["duration_s"] else 0.0,
        "latency_ms": merged_latency_ms(slices),
        "slices": [
            {"requests_per_s": piece["requests_per_s"], "p99_ms": piece["latency_ms"]["p99"]} for piece in slices
        ],
        "variant": running.name,
        "label": LABELS[running.name],
        "loadavg_1m": {"before": running.load_before, "after": loadavg()},
        "server_env": {k: v for k, v in running.server_env.items() if k.startswith("ADVISOR_") and "DATABASE" not in k},
        "worker_rss_mib_start": [round(v / 1024, 1) for v in running.rss_start.values()],
        "worker_rss_mib_end": [round(rss_kib(pid) / 1024, 1) for pid in server.worker_pids],
        # What bounded the run: a worker busy near 100 % was CPU-bound; a writer whose commit is in flight near
        # 100 % of the time was bound by the database's commit latency (throughput = rows per commit / latency).
        "worker_cpu": {
            "busy": round(total["cpu_s"] / (measured * args.workers), 3),
            "us_per_request": round(total["cpu_s"] * 1e6 / max(total["requests"], 1), 1),
        },
    }
    if running.dsn:
        rows = settled_count(running.dsn) - running.rows_before
        commits = audit_transactions(running.dsn) - running.commits_before
        result["audit"] = audit_check(result["ok_2xx"], result["in_flight_at_stop"], rows) | {
            "transactions": commits,
            "rows_per_transaction": round(rows / max(commits, 1), 2),
            "commit_busy": round(total["commit_s"] / (measured * args.workers), 3),
            "commit_ms_mean": round(total["commit_s"] * 1000 / max(total["commit_batches"], 1), 2),
        }
    line = (
        f"   {running.name}: {result['requests_per_s']:.0f} req/s, p50 {result['latency_ms']['p50']:.2f} ms, "
        f"p99 {result['latency_ms']['p99']:.2f} ms; worker CPU {result['worker_cpu']['busy']:.0%} busy, "
        f"{result['worker_cpu']['us_per_request']:.0f} µs a request"
    )
    if "audit" in result:
        a = result["audit"]
        line += (
            f"; 2xx {result['ok_2xx']}, audit rows {a['audit_rows']}: {a['verdict']}; "
            f"{a['transactions']} transactions ({a['rows_per_transaction']} rows each); "
            f"a commit in flight {a['commit_busy']:.0%} of the time, {a['commit_ms_mean']:.2f} ms each"
        )
    print(line, flush=True)
    return result


# What a variant's slices add up to (every in-flight request at a slice's stop is still answered and audited).
_SUMMED = (
    "duration_s",
    "requests",
    "sent",
    "non_2xx",
    "socket_errors",
    "timeouts",
    "ok_2xx",
    "in_flight_at_stop",
    "cpu_s",
    "commit_s",
    "commit_batches",
)


def bgwriter(admin_dsn: str) -> dict[str, int]:
    """Postgres's cluster-wide checkpoint and buffer-write counters (``pg_stat_bgwriter`` up to Postgres 16;
    empty where they moved, as in 17's ``pg_stat_checkpointer``)."""
    try:
        row = pg(
            admin_dsn,
            "SELECT json_build_object('checkpoints_timed', checkpoints_timed, 'checkpoints_req', checkpoints_req, "
            "'buffers_checkpoint', buffers_checkpoint, 'buffers_backend', buffers_backend)::text "
            "FROM pg_stat_bgwriter",
        )
    except Exception:  # a diagnostic only: the table is reported without it
        return {}
    return {k: int(v) for k, v in json.loads(row).items()}


def run_table(
    only: list[str], args: argparse.Namespace, load: Load, server_prefix: list[str], logdir: Path
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Every variant's server up at once, then ``--rounds`` rounds of one slice each, the order turning by one
    variant a round: a slow spell of the machine falls on every variant alike instead of on one of them."""
    with contextlib.ExitStack() as stack:
        running = {name: start_variant(name, args, load, server_prefix, logdir, stack) for name in only}
        seconds = max(1, round(args.duration / args.rounds))  # wrk runs whole seconds
        # Every run starts from the same database state: the warm-ups' dirty pages written out, no checkpoint under
        # way. Checkpoints during the rounds are counted (pg_stat_bgwriter) and reported with the table.
        if any(r.dsn for r in running.values()):
            pg(args.pg, "CHECKPOINT")
        bgwriter_before = bgwriter(args.pg)
        print(f"\n== {args.rounds} round(s) of {seconds:g} s a variant", flush=True)
        for turn in range(args.rounds):
            order = only[turn % len(only) :] + only[: turn % len(only)]
            figures = [measure_slice(running[name], load, seconds) for name in order]
            print(
                f"   round {turn + 1}: "
                + ", ".join(f"{name} {f['requests_per_s']:.0f}" for name, f in zip(order, figures, strict=True))
                + " req/s",
                flush=True,
            )
        during = {k: v - bgwriter_before[k] for k, v in bgwriter(args.pg).items() if k in bgwriter_before}
        note = (
            f"Postgres during the rounds: {during['checkpoints_timed'] + during['checkpoints_req']} checkpoint(s) "
            f"begun, {during['buffers_backend']} buffers written by backends"
            if during
            else "Postgres's checkpoint counters not found"
        )
        print(f"\n== totals ({note})", flush=True)
        results = {name: finish_variant(running[name], args) for name in only}
        return results, during


# --- reports --------------------------------------------------------------------------------------------------


def share(value: float, of: float) -> float:
    """``value / of``; NaN (never a met target) when the bare row has nothing to compare with."""
    return value / of if of else math.nan


def table(results: dict[str, dict[str, Any]]) -> str:
    bare = results.get("bare")
    head = (
        "| variant | req/s | p50 ms | p99 ms | req/s ÷ bare | p99 ÷ bare | 2xx (wrk) | non-2xx | socket err "
        "| in flight at stop | audit rows | audit rows vs 2xx | rows/txn | worker CPU busy | commit in flight |"
    )
    lines = [head, "|" + "---|" * 15]
    for r in results.values():
        ratio = f"{share(r['requests_per_s'], bare['requests_per_s']):.2f}" if bare else "-"
        p99 = f"{share(r['latency_ms']['p99'], bare['latency_ms']['p99']):.2f}" if bare else "-"
        a = r.get("audit")
        lines.append(
            f"| {r['label']} | {r['requests_per_s']:.0f} | {r['latency_ms']['p50']:.2f} | {r['latency_ms']['p99']:.2f} "
            f"| {ratio} | {p99} | {r['ok_2xx']} | {r['non_2xx']} | {r['socket_errors']} | {r['in_flight_at_stop']} "
            f"| {a['audit_rows'] if a else '-'} | {a['verdict'] if a else '-'} "
            f"| {a['rows_per_transaction'] if a else '-'} | {r['worker_cpu']['busy']:.0%} "
            f"| {format(a['commit_busy'], '.0%') if a else '-'} |"
        )
    return "\n".join(lines)


def targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    bare = results.get("bare")
    for name, label in (("advisor", "advisor"), ("distinct", "distinct profiles:")):
        row = results.get(name)
        if not (bare and row):
            continue
        rps = share(row["requests_per_s"], bare["requests_per_s"])
        p99 = share(row["latency_ms"]["p99"], bare["latency_ms"]["p99"])
        out.append({"target": f"{label} req/s >= {TARGET_RPS_RATIO:.2f} x bare", "value": round(rps, 3)})
        out[-1]["met"] = rps >= TARGET_RPS_RATIO
        out.append({"target": f"{label} p99 <= {TARGET_P99_RATIO:g} x bare p99", "value": round(p99, 3)})
        out[-1]["met"] = p99 <= TARGET_P99_RATIO
    for name in ("advisor", "logged", "distinct", "naive"):
        if name in results:
            lost = results[name]["audit"]["lost_rows"] + results[name]["audit"]["unexplained_rows"]
            out.append({"target": f"{name}: no lost (or unexplained) audit rows", "value": lost, "met": lost == 0})
    return out


def print_targets(found: list[dict[str, Any]]) -> None:
    for t in found:
        print(f"- {t['target']}: {t['value']} -> {'met' if t['met'] else 'NOT MET'}")


def save(record: dict[str, Any], kind: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = f"{record['date'][:10]}-{record['commit']['short'] or 'nocommit'}-{kind}"
    path = RESULTS / f"{stem}.json"
    n = 2
    while path.exists():
        path = RESULTS / f"{stem}-{n}.json"
        n += 1
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# --- memory ---------------------------------------------------------------------------------------------------


def run_memory(args: argparse.Namespace, load: Load, server_prefix: list[str], logdir: Path) -> dict[str, Any]:
    """RSS of one advisor worker (default audit) after start-up, then after each half of ``--memory-requests``."""
    env = base_env()
    halves = [args.memory_requests // 2, args.memory_requests - args.memory_requests // 2]
    print(f"\n== memory: advisor, group-commit audit, 1 worker, {args.memory_requests} decisions", flush=True)
    with contextlib.ExitStack() as stack:
        dsn, url = stack.enter_context(bench_database(args.pg, env))
        server_env = env | {"ADVISOR_DATABASE_URL": url}
        server = start_server([*server_prefix, str(BIN / "advisor"), "serve"], server_env, 1, logdir, "memory")
        stack.callback(stop_server, server)
        pid = server.worker_pids[0]
        time.sleep(1.0)  # let start-up finish settling (ruleset poller, pool)
        samples = [{"decisions": 0, "rss_mib": round(rss_kib(pid) / 1024, 1)}]
        print(f"   after start-up: RSS {samples[0]['rss_mib']} MiB (pid {pid})", flush=True)
        runs = []
        started = time.monotonic()
        for count in halves:
            remaining = args.memory_timeout - (time.monotonic() - started)
            if remaining < 5:
                print("   !! --memory-timeout reached before all decisions were made")
                break
            target = samples[-1]["decisions"] + count
            run = run_wrk(
                load,
                server.port,
                remaining,
                max_requests=count,
                until=lambda target=target: int(pg(dsn, "SELECT count(*) FROM decisions")) >= target,
                vary=True,  # the worst case for memory: every profile new, the memo always full
            )
            run.pop("histogram")
            rows = settled_count(dsn)
            samples.append({"decisions": rows, "rss_mib": round(rss_kib(pid) / 1024, 1)})
            runs.append(run)
            print(
                f"   {rows} decisions ({run['requests_per_s']:.0f} req/s, {run['non_2xx']} non-2xx): "
                f"RSS {samples[-1]['rss_mib']} MiB",
                flush=True,
            )
        if server.proc.poll() is not None:
            raise RuntimeError(f"server died during the memory run:\n{server.log_tail()}")
        sent = sum(r["sent"] for r in runs)
        ok = sum(r["ok_2xx"] for r in runs)
        in_flight = sum(r["in_flight_at_stop"] for r in runs)
        return {
            "server_env": {k: v for k, v in server_env.items() if k.startswith("ADVISOR_") and "DATABASE" not in k},
            "requests_sent": sent,
            "samples": samples,
            "ratio": round(samples[-1]["rss_mib"] / samples[0]["rss_mib"], 3),
            "runs": runs,
            "audit": audit_check(ok, in_flight, samples[-1]["decisions"]) | {"transactions": audit_transactions(dsn)},
        }


# --- main -----------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15, help="measured seconds per server (default 15)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="slices the measured seconds are cut into, interleaved (default 5)"
    )
    parser.add_argument("--warmup", type=float, default=5, help="warm-up seconds per server, discarded (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server (default 1)")
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"comma-separated subset of: {','.join(VARIANTS)}")
    parser.add_argument("--memory", action="store_true", help="run the RSS check instead of the throughput table")
    parser.add_argument("--memory-requests", type=int, default=100_000, help="decisions for --memory (100000)")
    parser.add_argument("--memory-timeout", type=float, default=300, help="--memory gives up after this, s (300)")
    parser.add_argument(
        "--pg",
        default=os.environ.get("ADVISOR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="admin DSN used to create and drop the bench databases (env ADVISOR_BENCH_PG)",
    )
    args = parser.parse_args()
    only = [v.strip() for v in args.only.split(",") if v.strip()]
    if unknown := set(only) - set(VARIANTS):
        fail(f"--only: unknown variant(s) {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    if args.workers < 1 or args.connections < 1 or args.duration < 1 or args.rounds < 1:
        fail("--workers, --connections, --duration and --rounds must be at least 1")
    if args.duration / args.rounds < 1:
        fail("--duration / --rounds must be at least 1 s (wrk runs whole seconds)")

    wrk = require_tools()
    server_prefix, load_prefix, pin_note = pinning()
    load = Load(wrk, load_prefix, args.connections, worked_example())
    try:
        pg_version = pg(args.pg, "SHOW server_version")
    except Exception as exc:
        fail(f"Postgres not reachable at {args.pg} ({type(exc).__name__}: {exc})")
    record: dict[str, Any] = {
        "kind": "memory" if args.memory else "http",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "commit": {"sha": git("rev-parse", "HEAD"), "short": git("rev-parse", "--short", "HEAD")},
        "versions": versions(wrk) | {"postgres": pg_version},
        "settings": {
            "load_generator": "wrk -t1 (one thread: one core), closed loop, bench/post_profile.lua",
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "workers": 1 if args.memory else args.workers,
            "wrk_timeout_s": WRK_TIMEOUT_S,
            "pinning": pin_note,
            "body_bytes": len(load.body),
            "advisor_defaults": audit_defaults(),
        },
    }
    changed = git("status", "--porcelain", "--untracked-files=no")
    record["commit"]["dirty"] = bool(changed)
    record["commit"]["changed_files"] = len(changed.splitlines()) if changed else 0
    print(f"load: wrk -t1 -c{args.connections}, {pin_note}")
    record["loadavg_1m_at_start"] = loadavg()
    if record["loadavg_1m_at_start"] > 0.5:
        print(f"note: load average {record['loadavg_1m_at_start']} before starting: other work competes for the CPUs")
    if record["commit"]["dirty"]:
        print(f"note: the working tree differs from {record['commit']['short']} ({len(changed.splitlines())} files)")

    failed = False
    with tempfile.TemporaryDirectory(prefix="advisor-bench-") as tmp:
        logdir = Path(tmp)
        if args.memory:
            memory = run_memory(args, load, server_prefix, logdir)
            record["memory"] = memory
            met = memory["ratio"] <= TARGET_RSS_RATIO
            record["targets"] = [
                {"target": f"RSS after {args.memory_requests} decisions <= {TARGET_RSS_RATIO} x after start-up"}
                | {"value": memory["ratio"], "met": met}
            ]
            print("\n| decisions | worker RSS MiB | ÷ start-up |\n|---|---|---|")
            for s in memory["samples"]:
                print(f"| {s['decisions']} | {s['rss_mib']} | {s['rss_mib'] / memory['samples'][0]['rss_mib']:.3f} |")
            a = memory["audit"]
            print(f"\naudit rows {a['audit_rows']} for {memory['requests_sent']} requests sent: {a['verdict']}")
            failed = a["lost_rows"] > 0 or a["unexplained_rows"] > 0
        else:
            results, record["postgres_during_rounds"] = run_table(only, args, load, server_prefix, logdir)
            record["results"] = results
            record["targets"] = targets(results)
            print(
                f"\n{args.workers} worker(s), {args.connections} connections, {args.duration:g} s in "
                f"{args.rounds} interleaved slice(s) after {args.warmup:g} s warm-up; {pin_note}\n"
            )
            print(table(results))
            failed = any(r.get("audit", {}).get("lost_rows", 0) for r in results.values()) or any(
                r.get("audit", {}).get("unexplained_rows", 0) for r in results.values()
            )
        print()
        print_targets(record["targets"])
    path = save(record, "memory-w1" if args.memory else f"http-w{args.workers}")
    print(f"\nwrote {path.relative_to(ROOT)}")
    if failed:
        print("\n!!! AUDIT ROWS DO NOT MATCH THE 2xx ANSWERS: a decision was answered without its row, or vice versa")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
