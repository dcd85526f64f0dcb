"""wrk runs for bench/http_bench.py: one run of ``bench/post_profile.lua`` against a server, its figures parsed.

Run nothing here; see bench/http_bench.py and bench/README.md.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "post_profile.lua"
PATH = "/v1/recommendations"
WRK_TIMEOUT_S = 10  # wrk's per-request timeout: far above any latency seen here, so no response is dropped

_RESULT = re.compile(r"^BENCH_RESULT (\{.*\})$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


@dataclass(frozen=True)
class Load:
    wrk: str
    prefix: list[str]
    connections: int
    body: bytes


def run_wrk(
    load: Load,
    port: int,
    duration_s: float,
    max_requests: int = 0,
    until: Callable[[], bool] | None = None,
    *,
    vary: bool = False,
    vary_offset: int = 0,
) -> dict[str, Any]:
    """One wrk run of ``duration_s``; with ``until``, ended early (SIGINT: wrk still reports) once it is true.

    ``vary``: every request a profile not sent before (another ``peak_rps``), so none is answered from the
    service's memo of recent profiles: the engine evaluates each one. ``vary_offset``: how many such profiles
    earlier runs against the same server sent (the sequence goes on from there).

    wrk's main thread sleeps for the whole -d even when the Lua script stops sending (``max_requests``), so a run
    of a fixed number of requests is ended from here: ``until`` is polled every second.
    """
    cmd = [
        *load.prefix,
        load.wrk,
        "-t1",
        f"-c{load.connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    env = os.environ | {
        "BENCH_BODY": load.body.decode(),
        "BENCH_MAX_REQUESTS": str(max_requests),
        "BENCH_VARY": "1" if vary else "0",
        "BENCH_VARY_OFFSET": str(vary_offset),
    }
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + duration_s + 60
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(1.0 if until else 0.2)
                if until is not None and proc.poll() is None and until():
                    proc.send_signal(signal.SIGINT)
                    break
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        text = out.read()
    return wrk_figures(text, proc.returncode)


def wrk_figures(text: str, returncode: int) -> dict[str, Any]:
    """The figures of one wrk run from its output: the Lua script's BENCH_RESULT line, checked against wrk's text."""
    found = _RESULT.search(text)
    if returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({returncode}):\n{text}")
    figures: dict[str, Any] = json.loads(found.group(1))
    errors = figures["errors"]
    # wrk's own text, as a cross-check of the figures from its Lua done() hook.
    rps_text = _RPS.search(text)
    non2xx_text = _NON2XX.search(text)
    assert int(non2xx_text.group(1) if non2xx_text else 0) == errors["status"], text
    socket_text = _SOCKET.search(text)
    socket_errors = errors["connect"] + errors["read"] + errors["write"]
    assert (sum(map(int, socket_text.groups()[:3])) if socket_text else 0) == socket_errors, text
    seconds = figures["duration_us"] / 1e6
    requests = figures["requests"]
    lat = figures["latency_us"]
    return {
        "duration_s": round(seconds, 3),
        "requests": requests,  # responses wrk read in full (any status)
        "sent": figures["sent"],
        # wrk counts a response with status >= 400 as "Non-2xx or 3xx"; these endpoints answer no 1xx or 3xx.
        "non_2xx": errors["status"],
        # Connect/read/write errors are not in wrk's request count (no complete response was read).
        "socket_errors": socket_errors,
        "timeouts": errors["timeout"],
        "ok_2xx": requests - errors["status"],
        "in_flight_at_stop": max(0, figures["sent"] - requests - socket_errors),
        "requests_per_s": round(requests / seconds, 1) if seconds else 0.0,
        "requests_per_s_wrk_text": float(rps_text.group(1)) if rps_text else None,
        "latency_ms": {k: round(v / 1000, 3) for k, v in lat.items()},
        "histogram": figures["histogram"],  # [microseconds, responses]: merged across slices, not saved
    }
