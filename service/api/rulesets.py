"""GET /v1/rulesets: every ruleset that has answered, with its full file texts."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter

from service.api.openapi_docs import error_responses
from service.api.problems import Problem
from service.api.schemas import RulesetDetail, RulesetList, RulesetSummary
from service.audit import AuditReader
from service.db.repository import RulesetRow
from service.registry import RulesetRegistry

__all__ = ["RulesetController"]


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

    @get(operation_id="listRulesets", summary="Stored rulesets, newest first")
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
        responses=error_responses(503),
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
        summary="A stored ruleset by version, with its files",
        description="The newest stored ruleset carrying this version label; its sha256 identifies the exact texts.",
        responses=error_responses(404, 422),
    )
    async def get_ruleset(
        self,
        reader: NamedDependency[AuditReader],
        registry: NamedDependency[RulesetRegistry],
        version: Annotated[str, PathParameter(max_length=64, description="Ruleset version, e.g. 2026.11.0.")],
    ) -> RulesetDetail:
        row = await reader.ruleset_by_version(version)
        if row is None:
            raise Problem(
                404,
                "ruleset-not-found",
                "Unknown ruleset version",
                f"no stored ruleset has version '{version[:64]}'.",
            )
        return _detail(row, registry.active.sha256 if registry.active else None)
