"""Shared OpenAPI documentation: the worked example and the error responses operations declare."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec

__all__ = ["WORKED_EXAMPLE", "ProblemDetails", "error_responses"]

import msgspec

# The study guide's worked example: 150 RPS peak, 20 RPS per instance, 70% target -> 11 base instances.
WORKED_EXAMPLE: dict[str, Any] = {
    "name": "fraud-xgb",
    "workload": {"bound": "cpu", "model_kind": "classic_ml", "model_memory_gib": 2},
    "traffic": {"peak_rps": 150, "per_instance_rps": 20, "burstiness": "steady"},
    "sla": {"p99_latency_ms": 100, "availability": 0.999},
    "target_utilization": 0.7,
}


class ProblemDetails(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details."""

    status: int
    title: str
    detail: str
    type: str | None = None
    code: str | None = None
    errors: list[dict[str, Any]] | None = None


_DESCRIPTIONS = {
    400: "Malformed JSON or query parameters.",
    401: "No API key, or one this service does not know (answered with `WWW-Authenticate: Bearer`): send "
    "`Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    403: "The API key lacks the scope this operation needs (named in `required_scope`, and as the role in the "
    "operation's security requirement).",
    404: "Not found (unknown decision, or unknown ruleset version).",
    413: "Request body larger than the configured limit.",
    415: "Content-Type is not application/json.",
    422: "Invalid input: the problem names each failing field; or a profile that cannot be advised on.",
    429: "Too many requests from this caller (API key) this minute: retry after `Retry-After` seconds.",
    503: "Not ready: the database does not answer or no ruleset is active.",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(
            data_container=ProblemDetails,
            description=_DESCRIPTIONS[code],
            media_type="application/problem+json",
            generate_examples=False,
        )
        for code in codes
    }
