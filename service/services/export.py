"""Exporting an audited decision, or a profile answered locally, as a CloudFormation template."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec

from service import __version__ as ENGINE_VERSION
from service.contract import Recommendation
from service.export.cloudformation import (
    ExportMeta,
    ExportNotPossible,
    TransformJobExport,
    as_yaml,
    cloudformation_export,
)
from service.services.audit import AuditReader
from service.services.replay import DecisionNotFound

__all__ = ["ExportNotPossible", "TransformJobExport", "as_yaml", "export_decision", "export_recommendation"]


async def export_decision(reader: AuditReader, decision_id: uuid.UUID) -> str | TransformJobExport:
    """The stored answer of ``decision_id`` as a template (its ruleset and engine in the metadata).

    Raises:
        DecisionNotFound: no such decision.
        ExportNotPossible: the stored answer lacks what the template needs.
    """
    row = await reader.decision(decision_id)
    if row is None:
        raise DecisionNotFound(decision_id)
    try:
        answer: Any = json.loads(row.recommendation)
    except ValueError as exc:
        raise ExportNotPossible(f"the stored answer is not JSON: {exc}") from None
    if not isinstance(answer, dict):
        raise ExportNotPossible("the stored answer is not a JSON object.")
    meta = ExportMeta(
        decision_id=str(row.id),
        ruleset_version=row.ruleset_version,
        ruleset_sha256=row.ruleset_sha256,
        engine_version=row.engine_version or "unknown (recorded before engine versions were kept)",
    )
    return cloudformation_export(answer, meta)


def export_recommendation(recommendation: Recommendation) -> str | TransformJobExport:
    """A fresh answer (no decision stored) as a template."""
    meta = ExportMeta(
        decision_id=None,
        ruleset_version=recommendation.ruleset.version,
        ruleset_sha256=recommendation.ruleset.sha256,
        engine_version=ENGINE_VERSION,
    )
    return cloudformation_export(msgspec.to_builtins(recommendation), meta)
