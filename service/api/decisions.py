"""GET /v1/decisions and /v1/decisions/{id}: the audit trail."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, PathParameter, QueryParameter

from service.api.auth import AUDIT_READ, require_scope, security_for
from service.api.openapi_docs import error_responses
from service.api.problems import Problem
from service.api.schemas import DecisionPage, DecisionRecord, DecisionSummary
from service.services.audit import AuditReader
from service.services.replay import DecisionNotFound, Replayer, ReplayResult

__all__ = ["DecisionController"]


# Bounds that survive conversion to UTC on every backend (0001-01-01+00:02 overflows, for one).
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9998, 12, 31, tzinfo=UTC)


def _encode_cursor(created_at: datetime, decision_id: uuid.UUID) -> str:
    raw = msgspec.json.encode([created_at, decision_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, decision_id = msgspec.json.decode(raw, type=tuple[datetime, uuid.UUID])
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise Problem(
            422,
            "invalid-cursor",
            "Invalid cursor",
            "cursor is not one this service issued.",
            errors=[{"message": "invalid cursor", "key": "cursor", "source": "query"}],
        ) from exc
    if created_at.tzinfo is None:
        raise Problem(422, "invalid-cursor", "Invalid cursor", "cursor is not one this service issued.")
    return created_at, decision_id


def _decision_uuid(decision_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(decision_id)
    except ValueError as exc:
        raise Problem(
            422,
            "invalid-decision-id",
            "Invalid decision id",
            f"'{decision_id[:64]}' is not a UUID.",
            errors=[{"message": "not a UUID", "key": "decision_id", "source": "path"}],
        ) from exc


class DecisionController(Controller):
    path = "/v1/decisions"
    tags = ["audit"]
    # Reading the audit trail, including replaying a decision (which reveals its profile and writes nothing).
    opt = require_scope(AUDIT_READ)
    security = security_for(AUDIT_READ)

    @get(
        "/{decision_id:str}",
        operation_id="getDecision",
        summary="An audited decision",
        description="The profile as received, the recommendation as answered (byte for byte), the ruleset "
        "version and sha256 and the engine version (advisor release) that made it, the caller and the request id.",
        responses=error_responses(400, 401, 403, 404, 422, 429, 503),
    )
    async def get_decision(
        self,
        reader: NamedDependency[AuditReader],
        decision_id: Annotated[str, PathParameter(description="UUIDv7 returned as decision_id.", max_length=64)],
    ) -> DecisionRecord:
        parsed = _decision_uuid(decision_id)
        row = await reader.decision(parsed)
        if row is None:
            raise Problem(404, "decision-not-found", "Unknown decision", f"no decision has id {parsed}.")
        return DecisionRecord(
            decision_id=row.id,
            created_at=row.created_at,
            ruleset_version=row.ruleset_version,
            ruleset_sha256=row.ruleset_sha256,
            engine_version=row.engine_version,
            caller=row.caller,
            request_id=row.request_id,
            # The stored JSON text goes out untouched, so it is byte-identical to what was received/answered.
            profile=msgspec.Raw(row.profile.encode()),  # type: ignore[arg-type]
            recommendation=msgspec.Raw(row.recommendation.encode()),  # type: ignore[arg-type]
        )

    @get(
        operation_id="listDecisions",
        summary="Audited decisions, newest first",
        description="Cursor pagination: pass `next_cursor` back as `cursor` until it is null.",
        responses=error_responses(400, 401, 403, 422, 429, 503),
    )
    async def list_decisions(
        self,
        reader: NamedDependency[AuditReader],
        limit: Annotated[int, QueryParameter(ge=1, le=500, description="Page size.")] = 50,
        cursor: Annotated[str | None, QueryParameter(max_length=200, description="From a previous page.")] = None,
        family: FromQuery[Literal["c", "m", "r", "g", "p", "inf"] | None] = None,
        scaling_method: FromQuery[Literal["target_tracking", "step", "scheduled"] | None] = None,
        ruleset_version: Annotated[str | None, QueryParameter(max_length=64)] = None,
        since: Annotated[datetime | None, QueryParameter(description="created_at >= since (RFC 3339).")] = None,
        until: Annotated[datetime | None, QueryParameter(description="created_at < until (RFC 3339).")] = None,
    ) -> DecisionPage:
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise Problem(
                    422,
                    "invalid-request",
                    "The request is invalid",
                    f"{name} needs a time zone.",
                    errors=[{"message": "needs a time zone, e.g. Z", "key": name, "source": "query"}],
                )
            if value is not None and not MIN_TIME <= value <= MAX_TIME:
                raise Problem(
                    422,
                    "invalid-request",
                    "The request is invalid",
                    f"{name} is outside the years 1970 to 9998.",
                    errors=[{"message": "outside 1970..9998", "key": name, "source": "query"}],
                )
        after = _decode_cursor(cursor) if cursor else None
        rows = await reader.decisions(
            limit=limit + 1,
            after=after,
            family=family,
            scaling_method=scaling_method,
            ruleset_version=ruleset_version,
            since=since,
            until=until,
        )
        page, more = rows[:limit], len(rows) > limit
        items = [
            DecisionSummary(
                decision_id=r.id,
                created_at=r.created_at,
                ruleset_version=r.ruleset_version,
                ruleset_sha256=r.ruleset_sha256,
                engine_version=r.engine_version,
                caller=r.caller,
                family=r.family,
                instance_type=r.instance_type,
                scaling_method=r.scaling_method,
                instances=r.instances,
            )
            for r in page
        ]
        next_cursor = _encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
        return DecisionPage(items=items, next_cursor=next_cursor)

    @post(
        "/{decision_id:str}/replay",
        operation_id="replayDecision",
        summary="Re-evaluate an audited decision",
        description="Evaluates the stored profile again, with this release's engine, under the ruleset that made "
        "the decision (the answer must be byte-identical unless the engine changed since: `engine_version_then`, "
        "`engine_version_now`, `engine_changed`) and, with `ruleset_version`, under another stored ruleset, listing "
        "the fields that differ. Each outcome's `cause` says whether a difference comes from the engine, the rules "
        "or both; `summary` says it in words. Nothing is audited.",
        status_code=200,
        responses=error_responses(400, 401, 403, 404, 422, 429, 503),
    )
    async def replay(
        self,
        replayer: NamedDependency[Replayer],
        decision_id: Annotated[str, PathParameter(description="UUIDv7 returned as decision_id.", max_length=64)],
        ruleset_version: Annotated[
            str | None, QueryParameter(max_length=64, description="Also replay under this stored ruleset version.")
        ] = None,
    ) -> ReplayResult:
        parsed = _decision_uuid(decision_id)
        try:
            return await replayer.replay(parsed, other_version=ruleset_version)
        except DecisionNotFound as exc:
            raise Problem(404, "decision-not-found", "Unknown decision", str(exc)) from exc
