"""The rounds of bench/http_bench.py: every (variant, worker count) server up at once, slices of load interleaved.

Run nothing here; see bench/http_bench.py and bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit import (
    BENCH,
    BIN,
    ROOT,
    AuditTotals,
    Server,
    audit_totals,
    audit_transactions,
    bench_database,
    cpu_seconds,
    loadavg,
    pg,
    rss_kib,
    settled_count,
    start_server,
    stop_server,
)
from wrkload import Load, run_wrk

VARIANTS = ("bare", "advisor", "logged", "distinct", "naive")
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


def base_env() -> dict[str, str]:
    """The caller's environment without any ADVISOR_* (no API keys, no database URL leak into the servers)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    return env | {
        "ADVISOR_LOG_LEVEL": "WARNING",
        "ADVISOR_RULES_DIR": str(ROOT / "rules"),
        "ADVISOR_MIGRATE_ON_START": "false",
        "PYTHONUNBUFFERED": "1",
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
    workers: int
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
    name: str,
    workers: int,
    args: argparse.Namespace,
    load: Load,
    server_prefix: list[str],
    logdir: Path,
    stack: contextlib.ExitStack,
) -> Running:
    """Start the variant's server (and database) with ``workers`` uvicorn workers, warm it up, and note the
    counters its slices start from."""
    print(f"\n== {name}: {LABELS[name]} ({workers} worker(s))", flush=True)
    env = base_env()
    dsn = None
    if name == "bare":
        cmd = [*server_prefix, sys.executable, str(BENCH / "bare_app.py")]
        server_env = env
    else:
        dsn, url = stack.enter_context(bench_database(args.pg, env))
        server_env = env | VARIANT_ENV[name] | {"ADVISOR_DATABASE_URL": url}
        cmd = [*server_prefix, str(BIN / "advisor"), "serve"]
    server = start_server(cmd, server_env, workers, logdir, f"{name}-w{workers}")
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
        workers,
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
    """One slice of load on a running variant, with the worker CPU, audit commit and chain-wait time it took."""
    server = running.server
    none = AuditTotals(0.0, 0.0, None)
    before = audit_totals(server.port) if running.dsn else none
    cpu_before = cpu_seconds(server.worker_pids)
    result = run_wrk(load, server.port, seconds, vary=running.name == "distinct", vary_offset=running.sent)
    result["cpu_s"] = cpu_seconds(server.worker_pids) - cpu_before
    running.sent += result["sent"] + 1
    after = audit_totals(server.port) if running.dsn else none
    result["commit_s"] = after.commit_s - before.commit_s
    result["commit_batches"] = after.commit_batches - before.commit_batches
    if after.chain_wait_s is not None and before.chain_wait_s is not None:
        result["chain_wait_s"] = after.chain_wait_s - before.chain_wait_s
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


def audit_figures(running: Running, result: dict[str, Any], measured: float) -> dict[str, Any]:
    """The audit part of a row: rows counted and checked, commits, and the time waited on the chain (None when
    the server exposes no chain-wait counter)."""
    rows = settled_count(running.dsn) - running.rows_before if running.dsn else 0
    commits = audit_transactions(running.dsn) - running.commits_before if running.dsn else 0
    slices = running.slices
    waits = [piece["chain_wait_s"] for piece in slices if "chain_wait_s" in piece]
    chain_wait = sum(waits) if slices and len(waits) == len(slices) else None
    batches = result["commit_batches"]
    return audit_check(result["ok_2xx"], result["in_flight_at_stop"], rows) | {
        "transactions": commits,
        "rows_per_transaction": round(rows / max(commits, 1), 2),
        "commit_busy": round(result["commit_s"] / (measured * running.workers), 3),
        "commit_ms_mean": round(result["commit_s"] * 1000 / max(batches, 1), 2),
        "chain_wait_s": None if chain_wait is None else round(chain_wait, 4),
        "chain_wait_s_per_s": None if chain_wait is None else round(chain_wait / measured, 4),
        "chain_wait_ms_per_commit": None if chain_wait is None else round(chain_wait * 1000 / max(batches, 1), 3),
    }


def finish_variant(running: Running) -> dict[str, Any]:
    """The variant's row: its slices added up, its audit rows counted and checked."""
    slices, server = running.slices, running.server
    total = {key: sum(piece[key] for piece in slices) for key in _SUMMED}
    # Shares of wrk's measured seconds (the server is idle while wrk starts and reports).
    measured = total["duration_s"] or 1.0
    result: dict[str, Any] = total | {
        "duration_s": round(total["duration_s"], 3),
        "requests_per_s": round(total["requests"] / total["duration_s"], 1) if total["duration_s"] else 0.0,
        "ok_2xx_per_s": round(total["ok_2xx"] / total["duration_s"], 1) if total["duration_s"] else 0.0,
        "latency_ms": merged_latency_ms(slices),
        "slices": [
            {"requests_per_s": piece["requests_per_s"], "p99_ms": piece["latency_ms"]["p99"]} for piece in slices
        ],
        "variant": running.name,
        "workers": running.workers,
        "label": LABELS[running.name],
        "loadavg_1m": {"before": running.load_before, "after": loadavg()},
        "server_env": {k: v for k, v in running.server_env.items() if k.startswith("ADVISOR_") and "DATABASE" not in k},
        "worker_rss_mib_start": [round(v / 1024, 1) for v in running.rss_start.values()],
        "worker_rss_mib_end": [round(rss_kib(pid) / 1024, 1) for pid in server.worker_pids],
        # What bounded the run: a worker busy near 100 % was CPU-bound; a writer whose commit is in flight near
        # 100 % of the time was bound by the database's commit latency (throughput = rows per commit / latency).
        "worker_cpu": {
            "busy": round(total["cpu_s"] / (measured * running.workers), 3),
            "us_per_request": round(total["cpu_s"] * 1e6 / max(total["requests"], 1), 1),
        },
    }
    if running.dsn:
        result["audit"] = audit_figures(running, result, measured)
    print(_totals_line(running.name, result), flush=True)
    return result


def _totals_line(name: str, result: dict[str, Any]) -> str:
    line = (
        f"   {name}: {result['requests_per_s']:.0f} req/s, p50 {result['latency_ms']['p50']:.2f} ms, "
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
        if a["chain_wait_s_per_s"] is not None:
            line += (
                f"; waiting on the chain {a['chain_wait_s_per_s']:.3f} s/s, {a['chain_wait_ms_per_commit']} ms a commit"
            )
    return line


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


Key = tuple[str, int]  # (variant, uvicorn workers)


def server_name(key: Key, several: bool) -> str:
    return f"{key[0]}@{key[1]}w" if several else key[0]


def run_table(
    keys: list[Key], args: argparse.Namespace, load: Load, server_prefix: list[str], logdir: Path
) -> tuple[dict[Key, dict[str, Any]], dict[str, int]]:
    """Every (variant, workers) server up at once, then ``--rounds`` rounds of one slice each, the order turning
    by one server a round: a slow spell of the machine falls on every server alike instead of on one of them."""
    several = len({n for _, n in keys}) > 1
    with contextlib.ExitStack() as stack:
        running = {key: start_variant(*key, args, load, server_prefix, logdir, stack) for key in keys}
        seconds = max(1, round(args.duration / args.rounds))  # wrk runs whole seconds
        # Every run starts from the same database state: the warm-ups' dirty pages written out, no checkpoint under
        # way. Checkpoints during the rounds are counted (pg_stat_bgwriter) and reported with the table.
        if any(r.dsn for r in running.values()):
            pg(args.pg, "CHECKPOINT")
        bgwriter_before = bgwriter(args.pg)
        print(f"\n== {args.rounds} round(s) of {seconds:g} s a server", flush=True)
        for turn in range(args.rounds):
            order = keys[turn % len(keys) :] + keys[: turn % len(keys)]
            figures = [measure_slice(running[key], load, seconds) for key in order]
            print(
                f"   round {turn + 1}: "
                + ", ".join(
                    f"{server_name(key, several)} {f['requests_per_s']:.0f}"
                    for key, f in zip(order, figures, strict=True)
                )
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
        results = {}
        for key in keys:
            if several:
                print(f"   [{key[1]} worker(s)]", flush=True)
            results[key] = finish_variant(running[key])
        return results, during
