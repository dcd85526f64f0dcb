"""Liveness and readiness, outside the API schema."""

from __future__ import annotations

import asyncio
import os

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from service.api.schemas import Health
from service.services.audit import AuditReader
from service.services.registry import RulesetRegistry
from service.services.startup import Startup, describe_cause

__all__ = ["healthz", "readyz"]

READY_DB_TIMEOUT_S = 2.0


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> Health:
    """Alive: the process answers. Checks no dependency, so a database outage never restarts pods."""
    return Health(status="ok")


@get("/readyz", include_in_schema=False)
async def readyz(
    reader: NamedDependency[AuditReader],
    registry: NamedDependency[RulesetRegistry],
    startup: NamedDependency[Startup],
) -> Response[Health]:
    """Ready: the database answers, has this release's migrations, and a ruleset is active; else 503 naming why."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(reader.ping(), timeout=READY_DB_TIMEOUT_S)
        checks["database"] = "ok"
    except TimeoutError:
        checks["database"] = f"unavailable: no answer within {READY_DB_TIMEOUT_S:g} s"
    except Exception as exc:
        checks["database"] = f"unavailable: {describe_cause(exc)}"
    checks["migrations"] = startup.migrations
    active = registry.active
    checks["ruleset"] = f"active {active.version} {active.sha256}" if active else f"none active: {startup.problem}"
    checks["worker"] = str(os.getpid())  # which worker process answered: each follows activations itself
    ready = checks["database"] == "ok" and startup.in_service and active is not None
    return Response(
        Health(status="ready" if ready else "unready", checks=checks),
        status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
    )
