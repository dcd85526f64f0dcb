"""Deciding and auditing: evaluate a profile, commit its audit row, only then answer.

``AuditWriter.write`` (service.services.audit) is the one place decisions are committed; the answer to a POST is built
from the same bytes that were stored, so the audit row and the response cannot differ. Each row names the ruleset
and the engine (this release, ``service.__version__``) that made the answer.

With an Idempotency-Key, a repeat of a request (same caller, key, body and ``ruleset_version``) is answered with
the original decision, rebuilt byte for byte from its stored recommendation; the same key with another request
is an ``IdempotencyConflict``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import uuid_utils

from service import __version__ as ENGINE_VERSION
from service.contract import WorkloadProfile
from service.db.repository import DecisionRow
from service.engine.memo import RecommendationMemo
from service.observability import metrics, tracing
from service.services.audit import AuditWriter, IdempotencyKey, translate_unavailable
from service.services.registry import RulesetRegistry

__all__ = ["Decided", "DecisionService", "request_fingerprint", "response_body"]

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Decided:
    decision_id: uuid.UUID
    created_at: datetime
    body: bytes  # the full response body: decision_id, created_at, then the recommendation's fields
    replayed: bool = False  # an earlier decision, answered again for a repeated Idempotency-Key


def response_body(decision_id: uuid.UUID, created_at: datetime, recommendation_json: bytes) -> bytes:
    """The POST answer: the stored recommendation JSON with decision_id and created_at in front."""
    head = _encoder.encode({"decision_id": decision_id, "created_at": created_at})
    return head[:-1] + b"," + recommendation_json[1:]


def request_fingerprint(profile_json: bytes, ruleset_version: str | None) -> str:
    """SHA-256 (hex) of what an Idempotency-Key stands for: the body exactly as received and the pinned version."""
    digest = hashlib.sha256(_encoder.encode(ruleset_version))
    digest.update(b"\n")
    digest.update(profile_json)
    return digest.hexdigest()


def _answer(row: DecisionRow, *, replayed: bool) -> Decided:
    body = response_body(row.id, row.created_at, row.recommendation.encode("utf-8"))
    return Decided(row.id, row.created_at, body, replayed=replayed)


class DecisionService:
    def __init__(self, registry: RulesetRegistry, writer: AuditWriter, memo: RecommendationMemo | None = None) -> None:
        self.registry = registry
        self.writer = writer
        # A profile asked again under the same ruleset is answered from its encoded recommendation (the engine is
        # pure, so it is the same answer); it is still audited as a decision of its own.
        self.memo = memo if memo is not None else RecommendationMemo(maxsize=0)

    async def decide(
        self,
        profile: WorkloadProfile,
        profile_json: bytes,
        *,
        ruleset_version: str | None,
        caller: str,
        request_id: str,
        client_request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Decided:
        """Evaluate and audit; raises ProfileRejected / RulesetNotFound before anything is stored.

        Raises ``AuditUnavailable`` when the database cannot be reached and ``IdempotencyConflict`` when
        ``idempotency_key`` was used by ``caller`` for another request; in both cases nothing is stored.
        """
        claim = None
        if idempotency_key is not None:
            claim = IdempotencyKey(caller, idempotency_key, request_fingerprint(profile_json, ruleset_version))
            original = await self.writer.recall(claim)
            if original is not None:
                return _answer(original, replayed=True)
        ruleset = self.registry.active_for(ruleset_version)
        if ruleset is None:  # a pinned earlier version: looked up in the database
            with translate_unavailable(self.writer.retry_after_s):
                ruleset = await self.registry.for_version(ruleset_version)
        decision_id = uuid.UUID(bytes=uuid_utils.uuid7().bytes)
        with tracing.span(tracing.EVALUATE, decision_id):
            recommendation = self.memo.get(profile, ruleset)
        recommendation_json = recommendation.json
        created_at = datetime.now(UTC)
        row = DecisionRow(
            id=decision_id,
            created_at=created_at,
            ruleset_sha256=ruleset.sha256,
            ruleset_version=ruleset.version,
            caller=caller,
            request_id=request_id,
            family=recommendation.family,
            instance_type=recommendation.instance_type,
            scaling_method=recommendation.scaling_method,
            instances=recommendation.instances,
            profile=profile_json.decode("utf-8"),
            recommendation=recommendation.text,
            engine_version=ENGINE_VERSION,  # the release whose engine evaluated it, chained with the rest
            client_request_id=client_request_id,
        )
        with tracing.span(tracing.AUDIT_COMMIT, decision_id):
            answering = await self.writer.write(row, idempotency=claim)
        if answering is not row:  # another request with this key got there first
            return _answer(answering, replayed=True)
        metrics.count_decision(row.family, row.scaling_method, row.ruleset_version)
        return Decided(decision_id, created_at, response_body(decision_id, created_at, recommendation_json))
