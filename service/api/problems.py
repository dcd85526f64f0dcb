"""Every error as RFC 9457 problem+json, mapped in one place."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY, HTTP_500_INTERNAL_SERVER_ERROR

from service.engine import ProfileRejected
from service.services.audit import AuditUnavailable, IdempotencyConflict, is_database_unavailable
from service.services.registry import AmbiguousRulesetVersion, RulesetNotFound

__all__ = ["PROBLEM_BASE", "Problem", "problem_details_plugin", "unexpected_error_handler"]

PROBLEM_BASE = "https://advisor.local/problems/"
logger = logging.getLogger("service.api")


class Problem(ProblemDetailsException):
    """A problem with a stable ``type`` URI built from a short code."""

    def __init__(
        self,
        status_code: int,
        code: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(
            status_code=status_code,
            type_=PROBLEM_BASE + code,
            title=title,
            detail=detail,
            extra={"code": code, **extra},
            headers=headers,
        )


def _from_http(exc: HTTPException) -> ProblemDetailsException:
    if isinstance(exc, ProblemDetailsException):
        return exc
    if isinstance(exc, ValidationException):
        errors = exc.extra if isinstance(exc.extra, list) else []
        return Problem(
            HTTP_422_UNPROCESSABLE_ENTITY,
            "invalid-request",
            "The request is invalid",
            _validation_detail(exc.detail, errors),
            errors=[_clean(e) for e in errors],
        )
    code = {
        400: "bad-request",
        404: "not-found",
        405: "method-not-allowed",
        413: "body-too-large",
        415: "unsupported-media-type",
        429: "too-many-requests",
        503: "unavailable",
    }.get(exc.status_code, f"http-{exc.status_code}")
    return ProblemDetailsException(
        status_code=exc.status_code,
        type_=PROBLEM_BASE + code,
        title=exc.detail,
        detail=exc.detail,
        headers=exc.headers,
        extra={"code": code},
    )


def _clean(error: Any) -> Any:
    if isinstance(error, dict):
        return {k: v for k, v in error.items() if k in ("message", "key", "source")}
    return error


def _validation_detail(detail: str, errors: list[Any]) -> str:
    """``key: message; ...`` as for a body (``service.api.json_body``), or Litestar's detail without errors."""
    described = [f"{e.get('key')}: {e['message']}" for e in errors if isinstance(e, dict) and e.get("message")]
    return "; ".join(described) or detail


def _from_rejected(exc: ProfileRejected) -> ProblemDetailsException:
    code = exc.code.replace("_", "-")  # problem codes are kebab-case, whatever a rule wrote
    extra: dict[str, Any] = {"code": code}
    if exc.field:
        extra["errors"] = [{"message": exc.message, "key": exc.field, "source": "body"}]
    return ProblemDetailsException(
        status_code=HTTP_422_UNPROCESSABLE_ENTITY,
        type_=PROBLEM_BASE + code,
        title="The profile cannot be advised on",
        detail=exc.message,
        extra=extra,
    )


def _from_unknown_ruleset(exc: RulesetNotFound) -> ProblemDetailsException:
    return Problem(404, "ruleset-not-found", "Unknown ruleset version", str(exc), version=exc.version)


def _from_ambiguous_ruleset(exc: AmbiguousRulesetVersion) -> ProblemDetailsException:
    # Several stored rulesets carry this version (stored before activation refused that): it names none of them.
    return Problem(
        409,
        "ruleset-version-ambiguous",
        "Ambiguous ruleset version",
        str(exc),
        version=exc.version,
        sha256s=exc.sha256s,
    )


def _from_unavailable(exc: AuditUnavailable) -> ProblemDetailsException:
    # Fail closed: no decision is answered without its audit row, so without a database there is no answer.
    return Problem(
        503,
        "database-unavailable",
        "The database is unavailable",
        "The audit database cannot be reached; no decision was made or stored. Retry after Retry-After seconds.",
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def _from_idempotency_conflict(exc: IdempotencyConflict) -> ProblemDetailsException:
    return Problem(
        409,
        "idempotency-key-reused",
        "Idempotency-Key already used",
        "This Idempotency-Key was already used with a different request (body or ruleset_version); "
        "use a new key for a new request.",
    )


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=True,
            exception_to_problem_detail_map={
                HTTPException: _from_http,
                ProfileRejected: _from_rejected,
                RulesetNotFound: _from_unknown_ruleset,
                AmbiguousRulesetVersion: _from_ambiguous_ruleset,
                AuditUnavailable: _from_unavailable,
                IdempotencyConflict: _from_idempotency_conflict,
            },
        )
    )


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unforeseen: log it with the request id, answer 500 without internals.

    A database outage met outside the audit reader and writer (which raise ``AuditUnavailable``) is still a 503.
    """
    if is_database_unavailable(exc):
        logger.warning("database unavailable: %s", exc, extra={"path": request.url.path})
        return _from_unavailable(AuditUnavailable(str(exc))).to_response(request)
    logger.exception("unhandled error", extra={"path": request.url.path})
    return Problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal-error",
        "Internal server error",
        "The server failed to answer; the error has been logged.",
    ).to_response(request)
