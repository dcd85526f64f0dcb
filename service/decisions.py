"""Deciding and auditing: evaluate a profile, commit its audit row, only then answer.

``AuditWriter.write`` (service.audit) is the one place decisions are committed; the answer to a POST is built
from the same bytes that were stored, so the audit row and the response cannot differ.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import uuid_utils

from service.audit import AuditWriter
from service.contract import Recommendation, WorkloadProfile
from service.db.repository import DecisionRow
from service.engine import evaluate
from service.registry import RulesetRegistry

__all__ = ["Decided", "DecisionService", "response_body"]

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Decided:
    decision_id: uuid.UUID
    created_at: datetime
    body: bytes  # the full response body: decision_id, created_at, then the recommendation's fields


def response_body(decision_id: uuid.UUID, created_at: datetime, recommendation_json: bytes) -> bytes:
    """The POST answer: the stored recommendation JSON with decision_id and created_at in front."""
    head = _encoder.encode({"decision_id": decision_id, "created_at": created_at})
    return head[:-1] + b"," + recommendation_json[1:]


class DecisionService:
    def __init__(self, registry: RulesetRegistry, writer: AuditWriter) -> None:
        self.registry = registry
        self.writer = writer

    async def decide(
        self,
        profile: WorkloadProfile,
        profile_json: bytes,
        *,
        ruleset_version: str | None,
        caller: str,
        request_id: str,
    ) -> Decided:
        """Evaluate and audit; raises ProfileRejected / RulesetNotFound before anything is stored."""
        ruleset = await self.registry.for_version(ruleset_version)
        recommendation: Recommendation = evaluate(profile, ruleset)
        recommendation_json = _encoder.encode(recommendation)
        decision_id = uuid.UUID(bytes=uuid_utils.uuid7().bytes)
        created_at = datetime.now(UTC)
        await self.writer.write(
            DecisionRow(
                id=decision_id,
                created_at=created_at,
                ruleset_sha256=ruleset.sha256,
                ruleset_version=ruleset.version,
                caller=caller,
                request_id=request_id,
                family=recommendation.instance.family,
                instance_type=recommendation.instance.instance_type,
                scaling_method=recommendation.scaling.method,
                instances=recommendation.capacity.instances,
                profile=profile_json.decode("utf-8"),
                recommendation=recommendation_json.decode("utf-8"),
            )
        )
        return Decided(decision_id, created_at, response_body(decision_id, created_at, recommendation_json))
