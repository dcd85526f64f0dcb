"""Shared OpenAPI documentation: the worked example and the error responses operations declare."""

from __future__ import annotations

from typing import Annotated, Any

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
    code: Annotated[
        str | None,
        msgspec.Meta(
            description="What went wrong, stable and kebab-case (`invalid-request`, `model-does-not-fit`); the "
            "last segment of `type`.",
        ),
    ] = None
    errors: Annotated[
        list[dict[str, Any]] | None,
        msgspec.Meta(
            description="Each failing input: `key` its full path (`traffic.peak_rps`, `load_tests[0].instance_type`; "
            "empty for the body as a whole), `message` what to change, `source` where it is (`body`, `query`, "
            "`header`, `path`).",
        ),
    ] = None


_DESCRIPTIONS = {
    400: "A malformed request (`bad-request`); for an operation with a JSON body, a body that is not usable JSON: "
    "empty (`empty-body`); malformed, not UTF-8, starting with a byte order mark or holding a number beyond the "
    "range of a double such as 1e400 (`malformed-json`); arrays and objects nested more than 32 levels "
    "(`body-nested-too-deeply`); a key repeated in one object (`duplicate-key`).",
    401: "No API key, or one this service does not know (answered with `WWW-Authenticate: Bearer`): send "
    "`Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    403: "The API key lacks the scope this operation needs (named in `required_scope`, and as the role in the "
    "operation's security requirement).",
    404: "Not found (unknown decision, or unknown ruleset version).",
    410: "The decision was in a month that has been archived (`decision-archived`): `detail` names the archive "
    "file; `advisor audit verify --archives DIR` and the file itself hold it.",
    413: "Request body larger than the configured limit (`body-too-large`; the limit in bytes is stated in "
    "`detail` and in `limit_bytes`).",
    415: "Content-Type is not application/json (in local mode, where no API keys are configured, every POST must "
    "declare it, a bodiless one too).",
    422: "Invalid input (`invalid-request`): `errors` lists every failing field by its full path, values of the "
    "wrong JSON type included (a number sent as a string); or a profile that cannot be advised on (`code` says why).",
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
