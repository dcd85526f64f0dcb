"""The ceiling for bench/http_bench.py: one Litestar POST endpoint, no rules, no database, no middleware.

It decodes the same body into the same msgspec Struct (``service.contract.WorkloadProfile``, unknown fields and
out-of-range values rejected exactly as the advisor does) and answers ``201`` with a small msgspec Struct. It runs
under the same server with the same flags as ``advisor serve`` (``uvicorn.run(..., factory=True,
proxy_headers=False, server_header=False)``, uvloop and httptools from ``uvicorn[standard]``) and the same worker
count, so the gap between it and the advisor is what the advisor does per request: rules, audit, middleware.

Run: .venv/bin/python bench/bare_app.py --port 18000 --workers 1
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, Request, get, post
from litestar.status_codes import HTTP_201_CREATED

from service.contract import WorkloadProfile

MAX_BODY_BYTES = 65_536  # the advisor's default ADVISOR_MAX_BODY_BYTES


class Accepted(msgspec.Struct, kw_only=True):
    name: str | None
    bound: str
    peak_rps: float


class Ready(msgspec.Struct, kw_only=True):
    status: str
    worker: int


@post("/v1/recommendations", status_code=HTTP_201_CREATED)
async def recommend(request: Request[Any, Any, Any], data: WorkloadProfile) -> Accepted:
    await request.body()  # the advisor reads the raw body too (it audits the profile as received)
    return Accepted(name=data.name, bound=data.workload.bound, peak_rps=data.traffic.peak_rps)


@get("/readyz", sync_to_thread=False)
def readyz() -> Ready:
    return Ready(status="ready", worker=os.getpid())


def create_app() -> Litestar:
    return Litestar(route_handlers=[recommend, readyz], request_max_body_size=MAX_BODY_BYTES, debug=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    # The same call as `advisor serve` (service/cli.py), with this module's factory.
    uvicorn.run(
        "bare_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        proxy_headers=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
