"""GET /v1/rulesets: every ruleset that has answered, with its full file texts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter

from service.api.auth import ADMIN, AUDIT_READ, require_scope, security_for
from service.api.body_schema import ImpactOperation
from service.api.context import caller_of, require_json
from service.api.json_body import read_json
from service.api.openapi_docs import ProblemDetails, error_responses
from service.api.problems import Problem
from service.api.schemas import (
    Activation,
    ActivationList,
    ActivationResponse,
    ImpactRequest,
    RulesetDetail,
    RulesetList,
    RulesetSummary,
)
from service.rulebook.loader import RulesetInvalid, load_ruleset
from service.rulebook.models import RULESET_VERSION_PATTERN
from service.services.activation import Activator, RulesetVersionConflict
from service.services.audit import AuditReader, RulesetRow
from service.services.impact import ImpactReport
from service.services.impact_runner import ImpactBusy, ImpactDeadlineExceeded, ImpactRunner
from service.services.registry import RulesetRegistry

__all__ = ["RulesetController"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_IMPACT_RETRY_AFTER_S = 5
_AMBIGUOUS = ResponseSpec(
    data_container=ProblemDetails,
    description="Several stored rulesets carry this version (stored before activation refused that): the problem "
    "(`ruleset-version-ambiguous`) lists their `sha256s`.",
    media_type="application/problem+json",
    generate_examples=False,
)
_VERSION_TAKEN = ResponseSpec(
    data_container=ProblemDetails,
    description="Another ruleset is stored under this version (`ruleset-version-conflict`, naming `stored_sha256s` "
    "and the refused `sha256`): bump `version` in ruleset.yaml. The active ruleset is unchanged.",
    media_type="application/problem+json",
    generate_examples=False,
)
# A candidate is a whole ruleset (the shipped one is about 63 KB of JSON, near ADVISOR_MAX_BODY_BYTES's default),
# so this route takes up to 1 MiB; what a hostile candidate can cost is bounded by the YAML node budget
# (service.rulebook.safe_yaml), the file count and the impact runner's deadline, not by the bytes.
IMPACT_MAX_BODY_BYTES = 1_048_576
_IMPACT_UNAVAILABLE = ResponseSpec(
    data_container=ProblemDetails,
    description="This worker runs as many impact analyses as it is allowed already (`impact-busy`, with "
    "`Retry-After`), or the run passed its deadline (`impact-deadline-exceeded`, naming the deadline and how many "
    "decisions were replayed by then: narrow it with `since` and `limit`, or run `advisor rules impact`); or the "
    "database does not answer.",
    media_type="application/problem+json",
    generate_examples=False,
)


def _detail(row: RulesetRow, active_sha: str | None) -> RulesetDetail:
    return RulesetDetail(
        version=row.version,
        sha256=row.sha256,
        description=row.description or "",
        created_at=row.created_at,
        active=row.sha256 == active_sha,
        files=dict(row.files),
    )


class RulesetController(Controller):
    path = "/v1/rulesets"
    tags = ["rulesets"]
    # Access is per operation (`opt=require_scope`): reading rulesets needs `audit:read`, since they are
    # part of the audit record (every decision names the ruleset that made it); changing them needs `admin`.

    @get(
        operation_id="listRulesets",
        summary="Stored rulesets, newest first",
        opt=require_scope(AUDIT_READ),
        security=security_for(AUDIT_READ),
        responses=error_responses(401, 403, 429, 503),
    )
    async def list_rulesets(
        self, reader: NamedDependency[AuditReader], registry: NamedDependency[RulesetRegistry]
    ) -> RulesetList:
        active_sha = registry.active.sha256 if registry.active else None
        rows = await reader.rulesets()
        return RulesetList(
            items=[
                RulesetSummary(
                    version=r.version,
                    sha256=r.sha256,
                    description=r.description or "",
                    created_at=r.created_at,
                    active=r.sha256 == active_sha,
                )
                for r in rows
            ]
        )

    @get(
        "/active",
        operation_id="getActiveRuleset",
        summary="The ruleset answering now, with its files",
        opt=require_scope(AUDIT_READ),
        security=security_for(AUDIT_READ),
        responses=error_responses(401, 403, 429, 503),
    )
    async def get_active(
        self, reader: NamedDependency[AuditReader], registry: NamedDependency[RulesetRegistry]
    ) -> RulesetDetail:
        active = registry.active
        row = await reader.ruleset(active.sha256) if active else None
        if row is None:
            raise Problem(503, "no-active-ruleset", "No active ruleset", "no ruleset is active yet.")
        return _detail(row, row.sha256)

    @get(
        "/{version:str}",
        operation_id="getRuleset",
        summary="A stored ruleset by version (or sha256), with its files",
        description="The stored ruleset carrying this version label; its sha256 identifies the exact texts. A version "
        "several stored rulesets carry is a 409 listing their hashes; 64 hex digits ask for the ruleset with that "
        "sha256.",
        opt=require_scope(AUDIT_READ),
        security=security_for(AUDIT_READ),
        responses={**error_responses(400, 401, 403, 404, 422, 429, 503), 409: _AMBIGUOUS},
    )
    async def get_ruleset(
        self,
        reader: NamedDependency[AuditReader],
        registry: NamedDependency[RulesetRegistry],
        version: Annotated[
            str,
            PathParameter(
                max_length=64,
                pattern=RULESET_VERSION_PATTERN,
                description="Ruleset version, e.g. 2026.11.0, or a ruleset's sha256.",
            ),
        ],
    ) -> RulesetDetail:
        by_hash = _SHA256.match(version) is not None
        row = await (reader.ruleset(version) if by_hash else reader.ruleset_by_version(version))
        if row is None:
            raise Problem(
                404,
                "ruleset-not-found",
                "Unknown ruleset version",
                f"no stored ruleset has {'sha256' if by_hash else 'version'} '{version[:64]}'.",
            )
        return _detail(row, registry.active.sha256 if registry.active else None)

    @post(
        "/reload",
        operation_id="reloadRuleset",
        summary="Activate the ruleset on disk",
        description="Loads the rules directory the service was started with (e.g. an updated ConfigMap), "
        "validates and lints it, stores it and makes it active on every worker and replica within about "
        "a second. A ruleset with errors is refused (422, with file:line messages) and the previous one "
        "keeps answering. A ruleset whose version is already stored with other files is refused (409).",
        status_code=200,
        opt=require_scope(ADMIN),
        security=security_for(ADMIN),
        responses={**error_responses(401, 403, 415, 422, 429), 409: _VERSION_TAKEN},
    )
    async def reload(
        self, request: Request[Any, Any, Any], activator: NamedDependency[Activator], rules_dir: NamedDependency[Path]
    ) -> ActivationResponse:
        try:
            loaded = load_ruleset(rules_dir, label="rules")
            result = await activator.activate(loaded, by=caller_of(request))
        except RulesetInvalid as exc:
            raise Problem(
                422,
                "ruleset-invalid",
                "The ruleset is invalid",
                f"{len(exc.errors)} error(s); the active ruleset is unchanged.",
                errors=[{"message": str(e), "key": e.file, "source": "rules"} for e in exc.errors],
            ) from exc
        except RulesetVersionConflict as exc:
            raise Problem(
                409,
                "ruleset-version-conflict",
                "The ruleset version is already taken",
                f"{exc}; the active ruleset is unchanged.",
                version=exc.version,
                stored_sha256s=exc.stored,
                sha256=exc.sha256,
            ) from exc
        return ActivationResponse(
            version=result.active.version,
            sha256=result.active.sha256,
            previous_sha256=result.previous_sha256,
            changed=result.changed,
            warnings=result.warnings,
        )

    @post(
        "/impact",
        operation_id="rulesetImpact",
        summary="What a candidate ruleset would change",
        description="Replays the audited profiles (oldest first, up to `limit`, from `since`) under the "
        "candidate ruleset given as files, and reports how many decisions would change, by field, the top "
        "transitions, the candidate rules responsible, the cost delta per hour and a sample. Decisions recorded "
        "by another engine version are also replayed under their own ruleset with this engine, and the changes the "
        "engine makes are counted apart from the candidate's (`changed_by_engine`, `engine_changed_by_field`, each "
        "sample's `cause`). Nothing is stored or activated. A candidate with errors is refused with file:line "
        "messages.",
        status_code=200,
        opt=require_scope(ADMIN),
        security=security_for(ADMIN),
        before_request=require_json,
        operation_class=ImpactOperation,
        request_max_body_size=IMPACT_MAX_BODY_BYTES,
        responses={**error_responses(400, 401, 403, 413, 415, 422, 429), 503: _IMPACT_UNAVAILABLE},
    )
    async def impact(self, request: Request[Any, Any, Any], impact: NamedDependency[ImpactRunner]) -> ImpactReport:
        data, _ = await read_json(request, ImpactRequest, check_schema=True)
        try:
            return await impact.run(data.files, since=data.since, limit=data.limit, sample_size=data.sample_size)
        except RulesetInvalid as exc:
            raise Problem(
                422,
                "ruleset-invalid",
                "The candidate ruleset is invalid",
                f"{len(exc.errors)} error(s).",
                errors=[{"message": str(e), "key": e.file, "source": "body"} for e in exc.errors],
            ) from exc
        except ImpactBusy as exc:
            retry = {"Retry-After": str(_IMPACT_RETRY_AFTER_S)}
            raise Problem(503, "impact-busy", "Impact runs are under way", str(exc), headers=retry) from exc
        except ImpactDeadlineExceeded as exc:
            raise Problem(
                503,
                "impact-deadline-exceeded",
                "The impact run took too long",
                str(exc),
                deadline_s=exc.deadline_s,
                decisions_replayed=exc.decisions,
            ) from exc

    @get(
        "/activations",
        operation_id="listActivations",
        summary="Ruleset activations, newest first",
        opt=require_scope(AUDIT_READ),
        security=security_for(AUDIT_READ),
        responses=error_responses(401, 403, 429, 503),
    )
    async def activations(self, activator: NamedDependency[Activator]) -> ActivationList:
        rows = await activator.history()
        return ActivationList(
            items=[
                Activation(
                    version=r.version,
                    sha256=r.sha256,
                    previous_sha256=r.previous_sha256,
                    activated_at=r.activated_at,
                    activated_by=r.activated_by,
                )
                for r in rows
            ]
        )
