"""HTTP benchmark: the advisor with its Postgres audit against a bare Litestar ceiling and a naive-audit floor.

Run (from the repository root; Postgres on 127.0.0.1:5432, Debian's wrk installed):

    .venv/bin/python bench/http_bench.py                 # ceiling, advisor (x3), floor: ~2 min, prints a table
    .venv/bin/python bench/http_bench.py --workers 2     # the same with two uvicorn workers per server
    .venv/bin/python bench/http_bench.py --workers 1,2,4 --only bare,advisor,distinct
                                                         # every variant at 1, 2 and 4 workers, in one run
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

With several worker counts (``--workers 1,2,4``) every selected variant runs once per count, each (variant, N) a
server of its own, all up for the whole run and interleaved in the rounds like the variants; the tables then give,
per N, the ratios to the bare endpoint at the same N, the time the audit writers waited on the chain
(``advisor_audit_chain_wait_seconds_total``, "n/a" where the service has no such counter), and a summary: each
audited variant's ratio at N ÷ its ratio at the smallest N. The rounds live in ``bench/http_rounds.py``, the
tables in ``bench/http_report.py``.

At the end the new rows of each advisor variant's ``decisions`` are counted and compared with its 2xx answers; see
bench/README.md for how to read the table and the JSON written to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# This script's directory is first on sys.path: bench/benchkit.py, wrkload.py, http_rounds.py, http_report.py.
from benchkit import (
    BIN,
    ROOT,
    audit_defaults,
    audit_transactions,
    bench_database,
    fail,
    git,
    loadavg,
    machine,
    pg,
    pinning,
    require_tools,
    rss_kib,
    settled_count,
    start_server,
    stop_server,
    versions,
    worked_example,
)
from http_report import TARGET_RSS_RATIO, print_targets, save, scaling, scaling_table, table, targets, workers_table
from http_rounds import VARIANTS, Key, audit_check, base_env, run_table
from wrkload import WRK_TIMEOUT_S, Load, run_wrk

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


def worker_counts(text: str) -> list[int]:
    """``--workers``: one count or a comma-separated list of them (kept in the order given, duplicates dropped)."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        fail(f"--workers: {text!r} is not a number or a comma-separated list of numbers")
    if not counts or min(counts) < 1:
        fail("--workers must be at least 1")
    return list(dict.fromkeys(counts))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15, help="measured seconds per server (default 15)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="slices the measured seconds are cut into, interleaved (default 5)"
    )
    parser.add_argument("--warmup", type=float, default=5, help="warm-up seconds per server, discarded (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--workers", default="1", help="uvicorn workers per server, or a comma-separated list such as 1,2,4 (default 1)"
    )
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
    args.only = [v.strip() for v in args.only.split(",") if v.strip()]
    if unknown := set(args.only) - set(VARIANTS):
        fail(f"--only: unknown variant(s) {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    args.worker_counts = worker_counts(args.workers)
    if args.connections < 1 or args.duration < 1 or args.rounds < 1:
        fail("--connections, --duration and --rounds must be at least 1")
    if args.duration / args.rounds < 1:
        fail("--duration / --rounds must be at least 1 s (wrk runs whole seconds)")
    return args


def new_record(args: argparse.Namespace, load: Load, wrk: str, pin_note: str) -> dict[str, Any]:
    try:
        pg_version = pg(args.pg, "SHOW server_version")
    except Exception as exc:
        fail(f"Postgres not reachable at {args.pg} ({type(exc).__name__}: {exc})")
    counts = args.worker_counts
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
            "workers": 1 if args.memory else (counts[0] if len(counts) == 1 else counts),
            "wrk_timeout_s": WRK_TIMEOUT_S,
            "pinning": pin_note,
            "body_bytes": len(load.body),
            "advisor_defaults": audit_defaults(),
        },
    }
    changed = git("status", "--porcelain", "--untracked-files=no")
    record["commit"]["dirty"] = bool(changed)
    record["commit"]["changed_files"] = len(changed.splitlines()) if changed else 0
    record["loadavg_1m_at_start"] = loadavg()
    return record


def report_memory(args: argparse.Namespace, memory: dict[str, Any], record: dict[str, Any]) -> bool:
    """Print the memory table; True if the audit rows do not match."""
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
    return bool(a["lost_rows"] > 0 or a["unexplained_rows"] > 0)


def report_table(args: argparse.Namespace, results: dict[Key, dict[str, Any]], record: dict[str, Any]) -> bool:
    """Print the table(s); True if any audit rows do not match."""
    counts = args.worker_counts
    by_workers = {n: {name: results[(name, n)] for name in args.only} for n in counts}
    print(
        f"\n{args.workers} worker(s), {args.connections} connections, {args.duration:g} s in "
        f"{args.rounds} interleaved slice(s) after {args.warmup:g} s warm-up; {record['settings']['pinning']}\n"
    )
    if len(counts) == 1:
        record["results"] = by_workers[counts[0]]
        record["targets"] = targets(record["results"])
        print(table(record["results"]))
    else:
        record["results_by_workers"] = {str(n): rows for n, rows in by_workers.items()}
        record["targets"] = [t | {"workers": n} for n, rows in by_workers.items() for t in targets(rows)]
        record["scaling"] = scaling(by_workers)
        print(workers_table(by_workers))
        print(f"\nAgainst N={min(counts)} (audited decisions/s ÷ bare at the same N):\n")
        print(scaling_table(record["scaling"], min(counts)))
    return any(
        r.get("audit", {}).get("lost_rows", 0) or r.get("audit", {}).get("unexplained_rows", 0)
        for r in results.values()
    )


def main() -> int:
    args = parse_args()
    wrk = require_tools()
    server_prefix, load_prefix, pin_note = pinning()
    load = Load(wrk, load_prefix, args.connections, worked_example())
    record = new_record(args, load, wrk, pin_note)
    print(f"load: wrk -t1 -c{args.connections}, {pin_note}")
    if record["loadavg_1m_at_start"] > 0.5:
        print(f"note: load average {record['loadavg_1m_at_start']} before starting: other work competes for the CPUs")
    if record["commit"]["dirty"]:
        print(
            f"note: the working tree differs from {record['commit']['short']} "
            f"({record['commit']['changed_files']} files)"
        )
    with tempfile.TemporaryDirectory(prefix="advisor-bench-") as tmp:
        logdir = Path(tmp)
        if args.memory:
            failed = report_memory(args, run_memory(args, load, server_prefix, logdir), record)
        else:
            keys = [(name, n) for n in args.worker_counts for name in args.only]
            results, record["postgres_during_rounds"] = run_table(keys, args, load, server_prefix, logdir)
            failed = report_table(args, results, record)
        print()
        print_targets(record["targets"])
    kind = "memory-w1" if args.memory else "http-w" + "-".join(map(str, args.worker_counts))
    path = save(record, kind)
    print(f"\nwrote {path.relative_to(ROOT)}")
    if failed:
        print("\n!!! AUDIT ROWS DO NOT MATCH THE 2xx ANSWERS: a decision was answered without its row, or vice versa")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
