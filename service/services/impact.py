"""Impact analysis: what a candidate ruleset would change in the audited history.

Every audited profile is re-decided under the candidate (``engine.decide``: rules, instance type
and counts, without payloads or prose) and compared with what was answered. The report counts
changes by field, the most frequent transitions, the candidate rules behind them, the cost delta
and a bounded sample; memory stays bounded whatever the history's size.

The candidate runs on this release's engine. A decision recorded by another engine version (or
before versions were kept) is also re-decided under its own stored ruleset with this engine: a
field that changes there too changed because of the engine, not the candidate rules, and the
report counts it apart (``changed_by_engine``, ``engine_changed_by_field``, each sample's
``cause``), so a rule reviewer can tell the two apart.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterable, Callable
from typing import Any, Protocol, TypeVar

import msgspec

from service import __version__ as ENGINE_VERSION
from service.contract import WorkloadProfile
from service.db.history import HistoryRow
from service.engine import CompiledRuleset
from service.engine.core import Decision, ProfileRejected, decide
from service.services.impact_report import UNRECORDED, Cause, ChangedDecision, ImpactReport, Transition, render_markdown
from service.services.impact_tally import ImpactTally
from service.services.replay import UndecodableProfile, decode_stored_profile

__all__ = [
    "FIELDS",
    "UNRECORDED",
    "ChangedDecision",
    "ImpactAnalysis",
    "ImpactReport",
    "ImpactTally",
    "RulesetSource",
    "Transition",
    "render_markdown",
    "stored_fields",
]

_K = TypeVar("_K")
_V = TypeVar("_V")

FIELDS = ("family", "instance_type", "instances", "scaling_method", "multi_az")


class _StoredAvailability(msgspec.Struct):
    multi_az: bool
    rule_id: str


class _StoredCost(msgspec.Struct):
    usd_per_hour: float


class _Stored(msgspec.Struct):
    """The parts of a stored recommendation impact analysis compares (the rest is skipped)."""

    availability: _StoredAvailability
    cost: _StoredCost


_stored_decoder = msgspec.json.Decoder(_Stored)


def stored_fields(recommendation: str) -> tuple[bool, float]:
    """``availability.multi_az`` and ``cost.usd_per_hour`` of a stored recommendation.

    Stored answers are this service's own canonical encoding (msgspec, fields in declaration order,
    no spaces), so both values sit right after known markers; scanning for them costs a fraction of
    decoding the whole answer, which dominates impact replay otherwise. Anything unexpected falls
    back to a full decode.
    """
    availability = recommendation.find('"availability":{"multi_az":')
    cost = recommendation.find('"cost":{"usd_per_hour":')
    if availability >= 0 and cost >= 0:
        flag_at = availability + len('"availability":{"multi_az":')
        price_at = cost + len('"cost":{"usd_per_hour":')
        price_end = recommendation.find(",", price_at)
        try:
            if recommendation.startswith("true", flag_at) or recommendation.startswith("false", flag_at):
                return recommendation.startswith("true", flag_at), float(recommendation[price_at:price_end])
        except ValueError:
            pass
    stored = _stored_decoder.decode(recommendation)
    return stored.availability.multi_az, stored.cost.usd_per_hour


class RulesetSource(Protocol):
    """Stored rulesets by content hash (``RulesetRegistry`` is one): a decision's own ruleset."""

    async def for_sha256(self, sha256: str) -> CompiledRuleset: ...


def _candidate_rule(decision: Decision, field: str) -> str:
    rule = {
        "family": decision.family_rule,
        "instance_type": decision.sizing_rule,
        "instances": decision.availability_rule,
        "scaling_method": decision.scaling_rule,
        "multi_az": decision.availability_rule,
    }[field]
    return f"{field}:{rule.id}"


def _decide(profile: WorkloadProfile, ruleset: CompiledRuleset) -> Decision | ProfileRejected:
    try:
        return decide(profile, ruleset, explain=False)
    except ProfileRejected as exc:
        return exc


def _values(decision: Decision) -> tuple[Any, ...]:
    """The compared fields of a decision, in the order of ``FIELDS``."""
    return (decision.family, decision.instance.type, decision.instances, decision.scaling_method, decision.multi_az)


_REFUSED = (None,) * len(FIELDS)  # the values of a refusal: every field differs from any answer
PROGRESS_ROWS = 2000  # add_stream tells its progress this often


def _remember(memo: OrderedDict[_K, _V], key: _K, value: _V, entries: int) -> None:
    """Keep ``value`` under ``key``, forgetting the oldest entry when ``memo`` holds ``entries`` already (an
    OrderedDict drops its first entry at once; a dict would step over the slots of those dropped before)."""
    if len(memo) >= entries:
        memo.popitem(last=False)
    memo[key] = value


class ImpactAnalysis:
    """Accumulates the comparison one audited decision at a time (into ``tally``).

    ``own_rulesets`` supplies the stored ruleset of each decision recorded by another engine version, to replay it
    with this engine (``add_stream`` looks it up; ``add`` takes it as ``own``). The engine is pure, so a profile
    stored again (the same text) is decided once while it stays among the last ``memo_entries`` distinct ones.
    """

    def __init__(
        self,
        candidate: CompiledRuleset,
        *,
        own_rulesets: RulesetSource | None = None,
        sample_size: int = 20,
        top: int = 10,
        memo_entries: int = 4096,
    ) -> None:
        self.candidate, self.own_rulesets = candidate, own_rulesets
        self.engine_version = ENGINE_VERSION
        self.top = top
        self.tally = ImpactTally(sample_size=sample_size)
        self._memo: OrderedDict[str, tuple[WorkloadProfile | UndecodableProfile, Decision | ProfileRejected | None]]
        self._memo = OrderedDict()
        self._own_memo: OrderedDict[tuple[str, str], Decision | ProfileRejected] = OrderedDict()
        self._memo_entries = memo_entries

    @property
    def decisions(self) -> int:
        return self.tally.decisions

    def _replayed(self, text: str) -> tuple[WorkloadProfile | UndecodableProfile, Decision | ProfileRejected | None]:
        """The stored profile ``text`` decoded, and the candidate's decision (None: it cannot be decoded)."""
        known = self._memo.get(text)
        if known is not None:
            return known
        try:
            profile: WorkloadProfile | UndecodableProfile = decode_stored_profile(text)
        except UndecodableProfile as exc:
            profile = exc
        after = None if isinstance(profile, UndecodableProfile) else _decide(profile, self.candidate)
        _remember(self._memo, text, (profile, after), self._memo_entries)
        return profile, after

    def _own(self, text: str, profile: WorkloadProfile, own: CompiledRuleset) -> Decision | ProfileRejected:
        key = (text, own.sha256)
        known = self._own_memo.get(key)
        if known is None:
            known = _decide(profile, own)
            _remember(self._own_memo, key, known, self._memo_entries)
        return known

    def add(self, row: HistoryRow, own: CompiledRuleset | None = None) -> None:
        """Compare one decision; ``own`` is its stored ruleset, needed when another engine version recorded it."""
        tally = self.tally
        tally.decisions += 1
        profile, after = self._replayed(row.profile)
        if isinstance(profile, UndecodableProfile) or after is None:
            self._add_undecodable(row, str(profile))
            return
        multi_az, usd_per_hour = stored_fields(row.recommendation)
        own_now: Decision | ProfileRejected | None = None  # its own ruleset under this engine, if the engine changed
        if row.engine_version != self.engine_version:
            tally.other_engines[row.engine_version or UNRECORDED] += 1
            if own is None or own.sha256 != row.ruleset_sha256:
                raise ValueError(f"decision {row.id} was recorded by another engine: pass its own ruleset")
            own_now = after if own.sha256 == self.candidate.sha256 else self._own(row.profile, profile, own)
        if isinstance(after, ProfileRejected):
            self._add_refused(row, after, by_engine=isinstance(own_now, ProfileRejected))
            return
        before_values = (row.family, row.instance_type, row.instances, row.scaling_method, multi_az)
        after_values = _values(after)
        tally.cost_delta.add(after.usd_per_hour - usd_per_hour)
        own_values = None
        if isinstance(own_now, Decision):
            own_values = _values(own_now)
            tally.engine_cost_delta.add(own_now.usd_per_hour - usd_per_hour)
        elif own_now is not None:
            own_values = _REFUSED  # this engine refuses it under its own ruleset: the engine changed every field
        if before_values != after_values:
            self._add_changed(row, after, before_values, after_values, own_values)

    def _add_changed(
        self,
        row: HistoryRow,
        after: Decision,
        before_values: tuple[Any, ...],
        after_values: tuple[Any, ...],
        own_values: tuple[Any, ...] | None,
    ) -> None:
        """A field changed by the engine differs already under the decision's own ruleset; one changed by the rules
        differs between that and the candidate (every change, for a decision this engine recorded)."""
        tally = self.tally
        tally.changed += 1
        changes: dict[str, list[Any]] = {}
        rules: list[str] = []
        by_engine = by_rules = False
        owns = after_values if own_values is None else own_values
        for field, before, now, own in zip(FIELDS, before_values, after_values, owns, strict=True):
            if before == now:
                continue
            changes[field] = [before, now]
            tally.by_field[field] += 1
            tally.transitions[(field, before, now)] += 1
            if own_values is not None and own != before:
                by_engine = True
                tally.engine_by_field[field] += 1
            if own_values is None or own != now:
                by_rules = True
                rule = _candidate_rule(after, field)
                rules.append(rule)
                tally.rules[rule] += 1
        cause: Cause = "engine_and_rules" if by_engine and by_rules else "engine" if by_engine else "rules"
        tally.causes[cause] += 1
        if len(tally.sample) < tally.sample_size:
            tally.sample.append(ChangedDecision(row.id, changes, rules, cause, row.engine_version))

    def _add_undecodable(self, row: HistoryRow, reason: str) -> None:
        tally = self.tally
        tally.undecodable += 1
        if len(tally.undecodable_sample) < tally.sample_size:
            tally.undecodable_sample.append({"decision_id": str(row.id), "reason": reason})

    def _add_refused(self, row: HistoryRow, exc: ProfileRejected, *, by_engine: bool) -> None:
        tally = self.tally
        tally.refused += 1
        tally.refused_by_engine += by_engine
        if len(tally.refused_sample) < tally.sample_size:
            tally.refused_sample.append(
                {
                    "decision_id": str(row.id),
                    "code": exc.code,
                    "message": exc.message,
                    "cause": "engine" if by_engine else "rules",
                }
            )

    async def add_stream(self, rows: AsyncIterable[HistoryRow], on_batch: Callable[[int], None] | None = None) -> None:
        """Add every row of ``rows``; ``on_batch(n)`` is told every ``PROGRESS_ROWS`` rows and at the end."""
        pending = 0
        async for row in rows:
            own = None
            if row.engine_version != self.engine_version and self.own_rulesets is not None:
                own = await self.own_rulesets.for_sha256(row.ruleset_sha256)
            self.add(row, own)
            pending += 1
            if pending == PROGRESS_ROWS and on_batch is not None:
                on_batch(pending)
                pending = 0
        if pending and on_batch is not None:
            on_batch(pending)

    def report(self) -> ImpactReport:
        t = self.tally
        return ImpactReport(
            candidate_version=self.candidate.version,
            candidate_sha256=self.candidate.sha256,
            decisions=t.decisions,
            changed=t.changed,
            unchanged=t.decisions - t.changed - t.refused - t.undecodable,
            refused=t.refused,
            undecodable=t.undecodable,
            undecodable_sample=t.undecodable_sample,
            changed_by_field={f: t.by_field[f] for f in FIELDS if t.by_field[f]},
            top_transitions=[
                Transition(field=f, before=b, after=a, count=n) for (f, b, a), n in t.transitions.most_common(self.top)
            ],
            rules_responsible=dict(t.rules.most_common(self.top)),
            cost_delta_usd_per_hour=round(t.cost_delta.total(), 4),
            sample=t.sample,
            refused_sample=t.refused_sample,
            engine_version=self.engine_version,
            other_engine=t.other_engines.total(),
            other_engine_versions=dict(sorted(t.other_engines.items())),
            changed_by_rules=t.causes["rules"],
            changed_by_engine=t.causes["engine"],
            changed_by_engine_and_rules=t.causes["engine_and_rules"],
            engine_changed_by_field={f: t.engine_by_field[f] for f in FIELDS if t.engine_by_field[f]},
            engine_cost_delta_usd_per_hour=round(t.engine_cost_delta.total(), 4),
            refused_by_engine=t.refused_by_engine,
        )
