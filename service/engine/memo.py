"""A bounded memo of encoded recommendations, for callers that ask about the same profile again.

``evaluate`` is a pure function of (profile, ruleset), so its encoded answer can be reused: fleet
loops and CI pipelines re-ask the same profiles. The key is the profile's canonical encoding (its
decoded Struct re-encoded, so key order and spacing in the request do not matter) plus the
ruleset's sha256. Least recently used entries go first; nothing here reads a clock.
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from service.contract import Recommendation, WorkloadProfile
from service.engine.compiled import CompiledRuleset
from service.engine.evaluate import evaluate

__all__ = ["EncodedRecommendation", "RecommendationMemo"]

_encoder = msgspec.json.Encoder()


class EncodedRecommendation(msgspec.Struct, frozen=True, gc=False):
    # The JSON twice: as bytes for the answer, and as text for the audit row, one str object per entry, which the
    # audit chain's hash recognises when a profile comes again (service.db.chain).
    json: bytes
    text: str
    family: str | None  # None where the mode has no instance (serverless) or no scaling
    instance_type: str | None
    scaling_method: str | None
    instances: int | None


class RecommendationMemo:
    def __init__(self, maxsize: int = 4096) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[str, bytes], EncodedRecommendation] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, profile: WorkloadProfile, ruleset: CompiledRuleset) -> EncodedRecommendation:
        """The encoded recommendation; raises ProfileRejected like ``evaluate`` (refusals are not kept)."""
        key = (ruleset.sha256, _encoder.encode(profile))
        entry = self._entries.get(key)
        if entry is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return entry
        self.misses += 1
        rec: Recommendation = evaluate(profile, ruleset)
        encoded = _encoder.encode(rec)
        entry = EncodedRecommendation(
            json=encoded,
            text=encoded.decode("utf-8"),
            family=rec.instance.family if rec.instance else None,
            instance_type=rec.instance.instance_type if rec.instance else None,
            scaling_method=rec.scaling.method if rec.scaling else None,
            instances=rec.capacity.instances if rec.capacity else None,
        )
        if self.maxsize > 0:
            self._entries[key] = entry
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return entry
