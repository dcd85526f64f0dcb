"""Replaying an audited decision: the same profile under its original ruleset (must be identical),
and optionally under another version, with the field-level difference."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from service.audit import AuditReader
from service.contract import WorkloadProfile
from service.engine import ProfileRejected, evaluate
from service.engine.compiled import CompiledRuleset
from service.registry import RulesetRegistry

__all__ = ["DecisionNotFound", "Difference", "ReplayOutcome", "ReplayResult", "Replayer", "differences"]

MAX_DIFFERENCES = 100
_encoder = msgspec.json.Encoder()


class DecisionNotFound(Exception):
    def __init__(self, decision_id: uuid.UUID) -> None:
        super().__init__(f"no decision has id {decision_id}")
        self.decision_id = decision_id


class Difference(msgspec.Struct, frozen=True):
    field: str
    before: Any
    after: Any


class ReplayOutcome(msgspec.Struct, kw_only=True, frozen=True):
    ruleset_version: str
    ruleset_sha256: str
    identical: bool
    differences: list[Difference]
    refused: str | None = None  # the refusal code, when this ruleset refuses the profile


class ReplayResult(msgspec.Struct, kw_only=True, frozen=True):
    decision_id: uuid.UUID
    original: ReplayOutcome
    other: ReplayOutcome | None = None


def _flatten(data: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(value, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _flatten(value, f"{prefix}.{i}", out)
        if not data:
            out[prefix] = []
    else:
        out[prefix] = data


def differences(before: Any, after: Any) -> list[Difference]:
    """Leaf-level differences between two JSON documents, as dotted paths (bounded)."""
    flat_before: dict[str, Any] = {}
    flat_after: dict[str, Any] = {}
    _flatten(before, "", flat_before)
    _flatten(after, "", flat_after)
    changed = [
        Difference(field=key, before=flat_before.get(key), after=flat_after.get(key))
        for key in sorted(flat_before.keys() | flat_after.keys())
        if flat_before.get(key, ...) != flat_after.get(key, ...)
    ]
    return changed[:MAX_DIFFERENCES]


class Replayer:
    def __init__(self, reader: AuditReader, registry: RulesetRegistry) -> None:
        self.reader, self.registry = reader, registry

    async def replay(self, decision_id: uuid.UUID, *, other_version: str | None = None) -> ReplayResult:
        row = await self.reader.decision(decision_id)
        if row is None:
            raise DecisionNotFound(decision_id)
        profile = msgspec.json.decode(row.profile, type=WorkloadProfile)
        stored = row.recommendation.encode()
        original = self._outcome(profile, stored, await self.registry.for_sha256(row.ruleset_sha256))
        other = None
        if other_version is not None:
            other = self._outcome(profile, stored, await self.registry.for_version(other_version))
        return ReplayResult(decision_id=decision_id, original=original, other=other)

    @staticmethod
    def _outcome(profile: WorkloadProfile, stored: bytes, ruleset: CompiledRuleset) -> ReplayOutcome:
        try:
            again = _encoder.encode(evaluate(profile, ruleset))
        except ProfileRejected as exc:
            return ReplayOutcome(
                ruleset_version=ruleset.version,
                ruleset_sha256=ruleset.sha256,
                identical=False,
                differences=[],
                refused=exc.code,
            )
        identical = again == stored
        diffs = [] if identical else differences(msgspec.json.decode(stored), msgspec.json.decode(again))
        return ReplayOutcome(
            ruleset_version=ruleset.version, ruleset_sha256=ruleset.sha256, identical=identical, differences=diffs
        )
