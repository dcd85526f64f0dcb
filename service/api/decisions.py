"""GET /v1/decisions and /v1/decisions/{id}: the audit trail."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, PathParameter, QueryParameter

from service.api.auth import AUDIT_READ, require_scope, security_for
from service.api.openapi_docs import ProblemDetails, error_responses
from service.api.problems import Problem
from service.api.schemas import DecisionPage, DecisionRecord, DecisionSummary
from service.rulebook.models import RULESET_VERSION_PATTERN
from service.services.audit import AuditReader
from service.services.replay import DecisionNotFound, Replayer, ReplayResult, StoredDecisionUnusable

__all__ = ["DecisionController", "DecisionId", "decision_uuid"]


# Bounds that survive conversion to UTC on every backend (0001-01-01+00:02 overflows, for one).
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9998, 12, 31, tzinfo=UTC)


# A cursor is the position after the last item of a page: its created_at in microseconds since 1970-01-01T00:00Z,
# a dash, then its id in 32 hexadecimal digits. Every string of this form is a position to read after, so the
# document's pattern says exactly which cursors the server accepts.
CURSOR_PATTERN = r"^(0|[1-9][0-9]{0,16})-[0-9a-f]{32}$"
_CURSOR = re.compile(CURSOR_PATTERN.strip("^$"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


_REPLAY_UNUSABLE = ResponseSpec(
    data_container=ProblemDetails,
    description="The decision exists but cannot be evaluated again: its stored profile is not a valid profile for "
    "this release (`stored-profile-invalid`, with the reason; `GET /v1/decisions/{decision_id}` returns it as "
    "received).",
    media_type="application/problem+json",
    generate_examples=False,
)


def _encode_cursor(created_at: datetime, decision_id: uuid.UUID) -> str:
    if created_at.tzinfo is None:  # stored as UTC
        created_at = created_at.replace(tzinfo=UTC)
    return f"{(created_at - _EPOCH) // _MICROSECOND}-{decision_id.hex}"


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    if _CURSOR.fullmatch(cursor) is None:
        raise Problem(
            422,
            "invalid-cursor",
            "Invalid cursor",
            "cursor is not one this service issued.",
            errors=[{"message": "invalid cursor", "key": "cursor", "source": "query"}],
        )
    micros, hex_id = cursor.split("-")
    return _EPOCH + int(micros) * _MICROSECOND, uuid.UUID(hex=hex_id)


# since and until: RFC 3339 date-times with a time zone, within years every backend stores (read as text, so a
# number such as 0.5 is not taken for seconds since 1970). Converting year 1 or 9999 to UTC can overflow, hence
# the comparison only within the edge years.
_TIME: dict[str, Any] = {"max_length": 64, "schema_extra": {"format": "date-time"}}


def _time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        message = "not an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z"
    else:
        if parsed.tzinfo is None:
            message = "needs a time zone, e.g. Z"
        else:  # no decision lies outside 1970..9998: a bound beyond them selects the same as the year's edge
            if parsed.year < 1970 or (parsed.year == 1970 and parsed < MIN_TIME):
                return MIN_TIME
            if parsed.year > 9998 or (parsed.year == 9998 and parsed > MAX_TIME):
                return MAX_TIME
            return parsed
    raise Problem(
        422,
        "invalid-request",
        "The request is invalid",
        f"{name}: {message}.",
        errors=[{"message": message, "key": name, "source": "query"}],
    )


# A decision id in the path: a UUID in its canonical form (8-4-4-4-12 hexadecimal digits), as `format: uuid` says.
DecisionId = Annotated[
    str, PathParameter(description="UUIDv7 returned as decision_id.", max_length=64, schema_extra={"format": "uuid"})
]
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def decision_uuid(decision_id: str) -> uuid.UUID:
    """The id in the path, or a 422 problem unless it is a UUID in its canonical form."""
    if _CANONICAL_UUID.fullmatch(decision_id) is None:
        raise Problem(
            422,
            "invalid-decision-id",
            "Invalid decision id",
            f"'{decision_id[:64]}' is not a UUID (8-4-4-4-12 hexadecimal digits).",
            errors=[{"message": "not a UUID", "key": "decision_id", "source": "path"}],
        )
    return uuid.UUID(decision_id)


class AuditReadController(Controller):
    """Routes under /v1/decisions that read the audit trail: reading, replaying, what-if and export all reveal
    stored profiles and answers and write nothing, so they need `audit:read`."""

    path = "/v1/decisions"
    tags = ["audit"]
    opt = require_scope(AUDIT_READ)
    security = security_for(AUDIT_READ)
    # Audit data: profiles and answers of every caller. No cache along the way may keep a copy.
    cache_control = CacheControlHeader(no_store=True)


class DecisionController(AuditReadController):
    @get(
        "/{decision_id:str}",
        operation_id="getDecision",
        summary="An audited decision",
        description="The profile as received, the recommendation as answered (byte for byte), the ruleset "
        "version and sha256 and the engine version (advisor release) that made it, the caller, the request id (the "
        "service's own) and the X-Request-ID the client sent, if any.",
        responses=error_responses(400, 401, 403, 404, 410, 422, 429, 503),
    )
    async def get_decision(
        self,
        reader: NamedDependency[AuditReader],
        decision_id: DecisionId,
    ) -> DecisionRecord:
        parsed = decision_uuid(decision_id)
        row = await reader.decision(parsed)
        if row is None:
            archived = await reader.archive_holding(parsed)
            if archived is not None:
                month = f"{archived.month // 100:04d}-{archived.month % 100:02d}"
                raise Problem(
                    410,
                    "decision-archived",
                    "Decision archived",
                    f"decision {parsed} was made in {month}, which was archived to {archived.file} "
                    f"(sha256 {archived.sha256}); it is no longer in the database.",
                )
            raise Problem(404, "decision-not-found", "Unknown decision", f"no decision has id {parsed}.")
        return DecisionRecord(
            decision_id=row.id,
            created_at=row.created_at,
            ruleset_version=row.ruleset_version,
            ruleset_sha256=row.ruleset_sha256,
            engine_version=row.engine_version,
            caller=row.caller,
            request_id=row.request_id,
            client_request_id=row.client_request_id,
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
        cursor: Annotated[
            str | None,
            QueryParameter(max_length=200, pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page."),
        ] = None,
        family: FromQuery[Literal["c", "m", "r", "g", "p", "inf"] | None] = None,
        scaling_method: FromQuery[Literal["target_tracking", "step", "scheduled"] | None] = None,
        ruleset_version: Annotated[str | None, QueryParameter(max_length=64, pattern=RULESET_VERSION_PATTERN)] = None,
        since: Annotated[str | None, QueryParameter(description="created_at >= since (RFC 3339).", **_TIME)] = None,
        until: Annotated[str | None, QueryParameter(description="created_at < until (RFC 3339).", **_TIME)] = None,
    ) -> DecisionPage:
        after = _decode_cursor(cursor) if cursor else None
        rows = await reader.decisions(
            limit=limit + 1,
            after=after,
            family=family,
            scaling_method=scaling_method,
            ruleset_version=ruleset_version,
            since=_time("since", since),
            until=_time("until", until),
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
        responses={**error_responses(400, 401, 403, 404, 415, 422, 429, 503), 409: _REPLAY_UNUSABLE},
    )
    async def replay(
        self,
        replayer: NamedDependency[Replayer],
        decision_id: DecisionId,
        ruleset_version: Annotated[
            str | None,
            QueryParameter(
                max_length=64,
                pattern=RULESET_VERSION_PATTERN,
                description="Also replay under this stored ruleset version.",
            ),
        ] = None,
    ) -> ReplayResult:
        parsed = decision_uuid(decision_id)
        try:
            return await replayer.replay(parsed, other_version=ruleset_version)
        except DecisionNotFound as exc:
            raise Problem(404, "decision-not-found", "Unknown decision", str(exc)) from exc
        except StoredDecisionUnusable as exc:
            raise Problem(409, exc.code, "The decision cannot be evaluated again", exc.message) from exc
