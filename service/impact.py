"""Impact analysis: what a candidate ruleset would change in the audited history.

Every audited profile is re-decided under the candidate (``engine.decide``: rules, instance type
and counts, without payloads or prose) and compared with what was answered. The report counts
changes by field, the most frequent transitions, the candidate rules behind them, the cost delta
and a bounded sample; memory stays bounded whatever the history's size.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterable, Iterable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from service.contract import WorkloadProfile
from service.db.history import HistoryRow, stream_history
from service.engine import CompiledRuleset
from service.engine.core import Decision, ProfileRejected, decide

__all__ = ["FIELDS", "ImpactAnalysis", "ImpactReport", "ImpactRunner", "render_markdown", "stored_fields"]

FIELDS = ("family", "instance_type", "instances", "scaling_method", "multi_az")
_profile_decoder = msgspec.json.Decoder(WorkloadProfile)


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


class Transition(msgspec.Struct, frozen=True):
    field: str
    before: Any
    after: Any
    count: int


class ChangedDecision(msgspec.Struct, frozen=True):
    decision_id: uuid.UUID
    changes: dict[str, list[Any]]  # field -> [before, after]
    rules: list[str]  # candidate rules that decided the changed fields


class ImpactReport(msgspec.Struct, kw_only=True):
    candidate_version: str
    candidate_sha256: str
    decisions: int
    changed: int
    unchanged: int
    refused: int  # profiles the candidate would refuse (422), e.g. a gap it opened
    changed_by_field: dict[str, int]
    top_transitions: list[Transition]
    rules_responsible: dict[str, int]
    cost_delta_usd_per_hour: float
    sample: list[ChangedDecision]
    refused_sample: list[dict[str, str]]


def _candidate_rule(decision: Decision, field: str) -> str:
    rule = {
        "family": decision.family_rule,
        "instance_type": decision.sizing_rule,
        "instances": decision.availability_rule,
        "scaling_method": decision.scaling_rule,
        "multi_az": decision.availability_rule,
    }[field]
    return f"{field}:{rule.id}"


class ImpactAnalysis:
    """Accumulates the comparison one audited decision at a time."""

    def __init__(self, candidate: CompiledRuleset, *, sample_size: int = 20, top: int = 10) -> None:
        self.candidate = candidate
        self.sample_size, self.top = sample_size, top
        self.decisions = self.changed = self.refused = 0
        self.by_field: Counter[str] = Counter()
        self.transitions: Counter[tuple[str, Any, Any]] = Counter()
        self.rules: Counter[str] = Counter()
        self.cost_delta = 0.0
        self.sample: list[ChangedDecision] = []
        self.refused_sample: list[dict[str, str]] = []

    def add(self, row: HistoryRow) -> None:
        self.decisions += 1
        multi_az, usd_per_hour = stored_fields(row.recommendation)
        try:
            after = decide(_profile_decoder.decode(row.profile), self.candidate, explain=False)
        except ProfileRejected as exc:
            self.refused += 1
            if len(self.refused_sample) < self.sample_size:
                self.refused_sample.append({"decision_id": str(row.id), "code": exc.code, "message": exc.message})
            return
        before_values = (row.family, row.instance_type, row.instances, row.scaling_method, multi_az)
        after_values = (after.family, after.instance.type, after.instances, after.scaling_method, after.multi_az)
        self.cost_delta += after.usd_per_hour - usd_per_hour
        if before_values == after_values:
            return
        self.changed += 1
        changes: dict[str, list[Any]] = {}
        rules: list[str] = []
        for field, before, now in zip(FIELDS, before_values, after_values, strict=True):
            if before != now:
                changes[field] = [before, now]
                self.by_field[field] += 1
                self.transitions[(field, before, now)] += 1
                rule = _candidate_rule(after, field)
                rules.append(rule)
                self.rules[rule] += 1
        if len(self.sample) < self.sample_size:
            self.sample.append(ChangedDecision(decision_id=row.id, changes=changes, rules=rules))

    def add_all(self, rows: Iterable[HistoryRow]) -> None:
        for row in rows:
            self.add(row)

    async def add_stream(self, rows: AsyncIterable[HistoryRow]) -> None:
        async for row in rows:
            self.add(row)

    def report(self) -> ImpactReport:
        return ImpactReport(
            candidate_version=self.candidate.version,
            candidate_sha256=self.candidate.sha256,
            decisions=self.decisions,
            changed=self.changed,
            unchanged=self.decisions - self.changed - self.refused,
            refused=self.refused,
            changed_by_field={f: self.by_field[f] for f in FIELDS if self.by_field[f]},
            top_transitions=[
                Transition(field=f, before=b, after=a, count=n)
                for (f, b, a), n in self.transitions.most_common(self.top)
            ],
            rules_responsible=dict(self.rules.most_common(self.top)),
            cost_delta_usd_per_hour=round(self.cost_delta, 4),
            sample=self.sample,
            refused_sample=self.refused_sample,
        )


class ImpactRunner:
    """Runs an analysis over the stored history (the service behind POST /v1/rulesets/impact)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def run(
        self, candidate: CompiledRuleset, *, since: datetime | None, limit: int | None, sample_size: int = 20
    ) -> ImpactReport:
        analysis = ImpactAnalysis(candidate, sample_size=sample_size)
        await analysis.add_stream(stream_history(self.engine, since=since, limit=limit))
        return analysis.report()


def render_markdown(report: ImpactReport) -> str:
    """A report to paste into a pull request."""
    share = f"{report.changed / report.decisions:.1%}" if report.decisions else "0%"
    lines = [
        f"### Impact of ruleset {report.candidate_version} (`{report.candidate_sha256[:12]}`)",
        "",
        f"{report.decisions} audited decisions replayed: **{report.changed} would change** ({share}), "
        f"{report.unchanged} unchanged, {report.refused} refused by the candidate.",
        f"Cost delta: **{report.cost_delta_usd_per_hour:+.2f} USD/hour** summed over the replayed decisions.",
        "",
        "| field | changed |",
        "|---|---:|",
        *(f"| {field} | {n} |" for field, n in report.changed_by_field.items()),
        "",
        "| transition | count |",
        "|---|---:|",
        *(f"| {t.field}: {t.before} → {t.after} | {t.count} |" for t in report.top_transitions),
        "",
        "| rule responsible | decisions |",
        "|---|---:|",
        *(f"| `{rule}` | {n} |" for rule, n in report.rules_responsible.items()),
    ]
    if report.sample:
        lines += ["", "Sample of changed decisions:", ""]
        lines += [
            f"- `{c.decision_id}`: "
            + ", ".join(f"{field} {before} → {after}" for field, (before, after) in c.changes.items())
            for c in report.sample
        ]
    if report.refused_sample:
        lines += ["", "Refused by the candidate:", ""]
        lines += [f"- `{r['decision_id']}`: {r['code']}: {r['message']}" for r in report.refused_sample]
    return "\n".join(lines) + "\n"
