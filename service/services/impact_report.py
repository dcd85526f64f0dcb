"""The report of an impact analysis (``service.services.impact``): its fields, as JSON answers them, and as markdown."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec

__all__ = ["UNRECORDED", "Cause", "ChangedDecision", "ImpactReport", "Transition", "render_markdown"]

UNRECORDED = "unrecorded"  # in other_engine_versions: decisions recorded before engine versions were kept
# Why a decision would change: the candidate rules; only the engine (its own ruleset under this engine already
# makes the change); or both.
Cause = Literal["rules", "engine", "engine_and_rules"]


class Transition(msgspec.Struct, frozen=True):
    field: str
    before: Any
    after: Any
    count: int


class ChangedDecision(msgspec.Struct, frozen=True):
    decision_id: uuid.UUID
    changes: dict[str, list[Any]]  # field -> [before, after]
    rules: list[str]  # candidate rules that decided the fields the rules changed
    cause: Cause  # "engine": its own ruleset gives the same change with this engine
    engine_version: str | None  # the engine that recorded it (None: before engine versions were kept)


class ImpactReport(msgspec.Struct, kw_only=True):
    candidate_version: str
    candidate_sha256: str
    decisions: int
    changed: int
    unchanged: int
    refused: int  # profiles the candidate would refuse (422), e.g. a gap it opened
    changed_by_field: dict[str, int]
    top_transitions: list[Transition]
    rules_responsible: dict[str, int]  # for the fields the candidate rules changed (not those the engine changed)
    cost_delta_usd_per_hour: float
    sample: list[ChangedDecision]
    refused_sample: list[dict[str, str]]
    # Stored profiles this release cannot decode (stored before repeated keys were refused, or under another
    # contract): counted and skipped, never a failed run; the sample names their decisions and why.
    undecodable: int
    undecodable_sample: list[dict[str, str]]
    # The engine: this analysis runs this release's; decisions recorded by another are told apart.
    engine_version: str
    other_engine: int  # decisions recorded by another engine version, or before versions were kept
    other_engine_versions: dict[str, int]  # those by recorded version (UNRECORDED: before versions were kept)
    changed_by_rules: int  # changed decisions whose every change comes from the candidate rules
    changed_by_engine: int  # changed only because the engine changed: same change under their own ruleset
    changed_by_engine_and_rules: int
    engine_changed_by_field: dict[str, int]  # field changes the engine makes under the decisions' own rulesets
    engine_cost_delta_usd_per_hour: float  # the part of the cost delta the engine makes under their own rulesets
    refused_by_engine: int  # of the refused, those this engine also refuses under their own ruleset


def _engine_lines(report: ImpactReport) -> list[str]:
    if not report.other_engine:
        return [
            f"Engine {report.engine_version} replayed them, the engine that recorded every one: every change comes "
            "from the candidate rules."
        ]
    versions = ", ".join(
        f"{'not recorded' if v == UNRECORDED else v}: {n}" for v, n in report.other_engine_versions.items()
    )
    return [
        f"Engine {report.engine_version} replayed them; {report.other_engine} were recorded by another engine "
        f"({versions}) and were also replayed under their own ruleset, to tell the engine's changes from the rules'.",
        f"Of the {report.changed} that would change: **{report.changed_by_rules} because of the candidate rules**, "
        f"**{report.changed_by_engine} only because the engine changed** (the same change under their own "
        f"ruleset), {report.changed_by_engine_and_rules} because of both. "
        f"{report.refused_by_engine} of the {report.refused} refusals the engine makes under their own ruleset too.",
        f"Cost delta from the engine alone: {report.engine_cost_delta_usd_per_hour:+.2f} USD/hour.",
    ]


def _sample_line(c: ChangedDecision) -> str:
    text = f"- `{c.decision_id}`: " + ", ".join(
        f"{field} {before} → {after}" for field, (before, after) in c.changes.items()
    )
    if c.cause != "rules":
        recorded = c.engine_version or "not recorded"
        text += f" ({'engine' if c.cause == 'engine' else 'engine and rules'}; recorded by engine {recorded})"
    return text


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
        *_engine_lines(report),
        "",
        "| field | changed | of which by the engine |",
        "|---|---:|---:|",
        *(
            f"| {field} | {n} | {report.engine_changed_by_field.get(field, 0)} |"
            for field, n in report.changed_by_field.items()
        ),
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
        lines += [_sample_line(c) for c in report.sample]
    if report.refused_sample:
        lines += ["", "Refused by the candidate:", ""]
        lines += [
            f"- `{r['decision_id']}`: {r['code']}: {r['message']}" + (" (engine)" if r.get("cause") == "engine" else "")
            for r in report.refused_sample
        ]
    if report.undecodable:
        lines += [
            "",
            f"{report.undecodable} stored profiles could not be decoded by this release and were skipped:",
            "",
        ]
        lines += [f"- `{r['decision_id']}`: {r['reason']}" for r in report.undecodable_sample]
    return "\n".join(lines) + "\n"
