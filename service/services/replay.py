"""Replaying an audited decision: the same profile under its original ruleset (must be identical),
and optionally under another version, with the field-level difference.

Replay runs this release's engine (``service.__version__``). Every decision records the engine version that made
it; when that differs from this one, an answer that differs under the decision's own ruleset differs because of
the engine, not the rules, and the result says so (``engine_changed``, each outcome's ``cause``, ``summary``).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec

from service import __version__ as ENGINE_VERSION
from service.contract import WorkloadProfile
from service.contract.decoding import decode_as
from service.engine import ProfileRejected, evaluate
from service.engine.compiled import CompiledRuleset
from service.services.audit import AuditReader
from service.services.registry import RulesetRegistry

__all__ = [
    "Cause",
    "DecisionNotFound",
    "Difference",
    "ReplayOutcome",
    "ReplayResult",
    "Replayer",
    "StoredDecisionUnusable",
    "UndecodableProfile",
    "decode_stored_profile",
    "differences",
    "stored_profile",
]

MAX_DIFFERENCES = 100
_encoder = msgspec.json.Encoder()

# Why a replayed answer differs from the stored one: "engine" (the ruleset's answer under this engine differs from
# the one the recording engine gave), "rules" (another ruleset), both, or "unexplained" (the same ruleset and the
# same engine version answered otherwise: the engine is pure, so check the audit chain with `advisor audit verify`).
Cause = Literal["engine", "rules", "engine_and_rules", "unexplained"]


class DecisionNotFound(Exception):
    def __init__(self, decision_id: uuid.UUID) -> None:
        super().__init__(f"no decision has id {decision_id}")
        self.decision_id = decision_id


class StoredDecisionUnusable(Exception):
    """The audited decision exists, but this release cannot evaluate it again (answered as 409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class UndecodableProfile(Exception):
    """A stored profile this release cannot decode; ``reason`` says why, printable and short."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_stored_profile(profile: str) -> WorkloadProfile:
    """A stored profile, decoded as the decide path decoded it when it was received.

    Raises:
        UndecodableProfile: it is not a valid profile for this release (stored before the service refused repeated
            keys, by a release whose contract differed, or written behind the service's back, e.g. nested past the
            stack).
    """
    try:
        return decode_as(profile, WorkloadProfile)
    except (msgspec.DecodeError, RecursionError, ValueError, OverflowError) as exc:
        raise UndecodableProfile(str(exc).replace("\x00", "NUL")[:300]) from None


def stored_profile(decision_id: uuid.UUID, profile: str) -> WorkloadProfile:
    """The profile stored with a decision (:func:`decode_stored_profile`).

    Raises:
        StoredDecisionUnusable: it is not a valid profile for this release.
    """
    try:
        return decode_stored_profile(profile)
    except UndecodableProfile as exc:
        raise StoredDecisionUnusable(
            "stored-profile-invalid",
            f"the profile stored with decision {decision_id} is not a valid WorkloadProfile for this release "
            f"({exc.reason}); GET /v1/decisions/{decision_id} returns it as received.",
        ) from None


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
    cause: Cause | None = None  # why it differs from the stored answer (None when identical)


class ReplayResult(msgspec.Struct, kw_only=True, frozen=True):
    decision_id: uuid.UUID
    engine_version_then: str | None  # recorded with the decision; None: recorded before engine versions were kept
    engine_version_now: str  # this release, whose engine replayed it
    engine_changed: bool  # then != now (a decision recorded without a version was made by an earlier release)
    original: ReplayOutcome
    other: ReplayOutcome | None = None
    summary: str  # the outcome in one or two sentences, saying whether a difference comes from engine or rules


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


# An answer replayed: the encoded recommendation, or the refusal's code.
_Answer = bytes | ProfileRejected


def _evaluate(profile: WorkloadProfile, ruleset: CompiledRuleset) -> _Answer:
    try:
        return _encoder.encode(evaluate(profile, ruleset))
    except ProfileRejected as exc:
        return exc


def _same(a: _Answer, b: _Answer) -> bool:
    if isinstance(a, ProfileRejected) or isinstance(b, ProfileRejected):
        return isinstance(a, ProfileRejected) and isinstance(b, ProfileRejected) and a.code == b.code
    return a == b


def _outcome(ruleset: CompiledRuleset, stored: bytes, again: _Answer, cause: Cause | None) -> ReplayOutcome:
    if isinstance(again, ProfileRejected):
        return ReplayOutcome(
            ruleset_version=ruleset.version,
            ruleset_sha256=ruleset.sha256,
            identical=False,
            differences=[],
            refused=again.code,
            cause=cause,
        )
    identical = again == stored
    diffs = [] if identical else differences(msgspec.json.decode(stored), msgspec.json.decode(again))
    return ReplayOutcome(
        ruleset_version=ruleset.version,
        ruleset_sha256=ruleset.sha256,
        identical=identical,
        differences=diffs,
        cause=None if identical else cause,
    )


def _other_cause(engine_changed: bool, own_again: _Answer, own_identical: bool, other_again: _Answer) -> Cause:
    """Why the answer under another ruleset differs from the stored one. Both replays ran this engine: what the
    other ruleset changes against the decision's own ruleset is the rules'; what the own ruleset already changes
    against the stored answer is the engine's."""
    if not engine_changed:
        return "rules"
    by_engine, by_rules = not own_identical, not _same(own_again, other_again)
    if by_engine and by_rules:
        return "engine_and_rules"
    return "engine" if by_engine else "rules"


def _summary(result: ReplayResult) -> str:
    then = result.engine_version_then or "not recorded (a release before 0.2.0)"
    original, now = result.original, result.engine_version_now
    own = f"its own ruleset {original.ruleset_version}"
    if original.cause is None:
        text = f"Identical under {own} with engine {now}"
        text += f" (recorded by engine {then})." if result.engine_changed else "."
    elif original.cause == "engine":
        verb = "refuses it" if original.refused else f"differs in {len(original.differences)} field(s)"
        text = (
            f"Under {own} the answer {verb}: the difference comes from the engine ({then} then, {now} now), "
            "not the rules."
        )
    else:
        text = (
            f"Under {own} and the same engine {now} the answer differs: neither the rules nor the engine explain "
            "it; check the audit chain (`advisor audit verify`)."
        )
    other = result.other
    if other is not None:
        if other.cause is None:
            text += f" Under ruleset {other.ruleset_version}: identical."
        else:
            source = {"engine": "the engine", "rules": "the rules"}.get(other.cause, "the engine and the rules")
            change = "refused" if other.refused else f"{len(other.differences)} field(s) differ"
            text += f" Under ruleset {other.ruleset_version}: {change}, because of {source}."
    return text


class Replayer:
    def __init__(self, reader: AuditReader, registry: RulesetRegistry) -> None:
        self.reader, self.registry = reader, registry
        self.engine_version = ENGINE_VERSION

    async def replay(self, decision_id: uuid.UUID, *, other_version: str | None = None) -> ReplayResult:
        row = await self.reader.decision(decision_id)
        if row is None:
            raise DecisionNotFound(decision_id)
        profile = stored_profile(decision_id, row.profile)
        stored = row.recommendation.encode()
        engine_changed = row.engine_version != self.engine_version
        own = await self.registry.for_sha256(row.ruleset_sha256)
        own_again = _evaluate(profile, own)
        original = _outcome(own, stored, own_again, "engine" if engine_changed else "unexplained")
        other = None
        if other_version is not None:
            ruleset = await self.registry.for_version(other_version)
            again = _evaluate(profile, ruleset)
            other = _outcome(ruleset, stored, again, _other_cause(engine_changed, own_again, original.identical, again))
        result = ReplayResult(
            decision_id=decision_id,
            engine_version_then=row.engine_version,
            engine_version_now=self.engine_version,
            engine_changed=engine_changed,
            original=original,
            other=other,
            summary="",
        )
        return msgspec.structs.replace(result, summary=_summary(result))
