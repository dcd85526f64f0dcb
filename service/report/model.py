"""What a report shows, taken from a stored decision: pure functions of its JSON (no I/O, no clock).

Every read tolerates an absent field: decisions stored by older releases (no expected cost, no capacity block) and
newer hosting modes render with what they have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.report.capacity_chart import capacity_chart, rates, scaling_chart
from service.report.charts import az_chart, cost_chart
from service.report.rules import RuleRow, fired_rules
from service.report.svg import Chart
from service.report.week import week_model

__all__ = ["AlarmRow", "Report", "build_report"]


@dataclass(frozen=True, slots=True)
class AlarmRow:
    name: str
    metric: str
    threshold: str  # with its unit
    meaning: str


@dataclass(frozen=True, slots=True)
class Report:
    title: str
    summary: list[tuple[str, str]]  # (label, value), in reading order
    charts: list[Chart]
    alarms: list[AlarmRow]
    warnings: list[tuple[str, str]]  # (code, message)
    rules: list[RuleRow]
    links: list[tuple[str, str, str]]  # (words, method, path): GET paths are links
    notes: list[str] = field(default_factory=list)  # what could not be shown, and why
    decision_id: str | None = None


def build_report(
    record: Mapping[str, Any],
    *,
    ruleset_files: Mapping[str, str] | None = None,
    what_if: Sequence[Mapping[str, Any]] = (),
    links: bool = True,
) -> Report:
    """The report of a decision record: ``profile``, ``recommendation`` and, when audited, ``decision_id``,
    ``ruleset_version``, ``engine_version`` (as ``GET /v1/decisions/{id}`` answers)."""
    profile: Mapping[str, Any] = record.get("profile") or {}
    rec: Mapping[str, Any] = record.get("recommendation") or {}
    decision_id = record.get("decision_id")
    charts, notes = _charts(profile, rec, what_if)
    return Report(
        title=str(rec.get("profile_name") or profile.get("name") or "Recommendation"),
        summary=_summary(record, rec),
        charts=charts,
        alarms=_alarms(rec),
        warnings=[(str(w.get("code", "")), str(w.get("message", ""))) for w in rec.get("warnings") or ()],
        rules=fired_rules(rec.get("explanation") or (), ruleset_files or {}),
        links=_links(str(decision_id)) if decision_id and links else [],
        notes=notes,
        decision_id=str(decision_id) if decision_id else None,
    )


def _summary(record: Mapping[str, Any], rec: Mapping[str, Any]) -> list[tuple[str, str]]:
    hosting = rec.get("hosting") or {}
    instance = rec.get("instance") or {}
    capacity = rec.get("capacity") or {}
    cost = rec.get("cost") or {}
    ruleset = rec.get("ruleset") or {}
    per_az = capacity.get("per_az") or []
    rows = [("mode", str(hosting.get("mode", "not recorded")))]
    if instance.get("instance_type") and capacity.get("instances") is not None:  # modes without a fleet have none
        fleet = f"{instance['instance_type']} x {capacity['instances']}"
        rows.append(("fleet", fleet + (f" ({' + '.join(map(str, per_az))} per AZ)" if per_az else "")))
    rows += _cost_summary(cost)
    scaling = rec.get("scaling") or {}
    if scaling.get("method"):
        rows.append(
            (
                "scaling",
                f"{scaling['method']}, min {capacity.get('min_instances', '?')}, "
                f"max {capacity.get('max_instances', '?')}",
            )
        )
    rows.append(
        (
            "ruleset",
            f"{record.get('ruleset_version') or ruleset.get('version', '?')} "
            f"(sha256 {str(record.get('ruleset_sha256') or ruleset.get('sha256', ''))[:12]}…)",
        )
    )
    engine = record.get("engine_version")
    rows.append(("engine", str(engine) if engine else "not recorded"))
    if record.get("decision_id"):
        rows.append(("decision", str(record["decision_id"])))
    return rows


def _usd(value: object) -> str | None:
    return f"{value:,.2f}" if isinstance(value, int | float) else None


def _cost_summary(cost: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The monthly cost: expected with its min and peak, or, from older decisions, the peak fleet's month."""
    expected, low, peak = (_usd(cost.get(f"usd_per_month_{k}")) for k in ("expected", "min", "peak"))
    if expected is not None:
        span = f" (min {low} to peak {peak})" if low is not None and peak is not None else ""
        return [("monthly cost", f"{expected} USD expected{span}")]
    month = _usd(cost.get("usd_per_month"))
    if month is not None:
        return [("monthly cost", f"{month} USD at the peak fleet (no expected cost stored)")]
    return []


def _charts(
    profile: Mapping[str, Any], rec: Mapping[str, Any], what_if: Sequence[Mapping[str, Any]]
) -> tuple[list[Chart], list[str]]:
    charts: list[Chart] = []
    notes: list[str] = []
    capacity = rec.get("capacity") or {}
    plan_rates = rates(profile, rec)
    week = week_model(profile, rec)
    if week is not None and plan_rates is not None:
        charts.append(capacity_chart(week, plan_rates, capacity))
        peak = float((profile.get("traffic") or {}).get("peak_rps", 0.0))
        charts.append(scaling_chart(plan_rates, capacity, peak))
    else:
        notes.append("capacity and scaling charts: the decision does not record the fleet and rates they need")
    az = az_chart(capacity, rec.get("availability") or {})
    if az is not None:
        charts.append(az)
    else:
        notes.append("AZ diagram: the decision records no instances per AZ")
    cost = cost_chart(rec.get("cost") or {}, str((rec.get("instance") or {}).get("instance_type", "")), what_if)
    if cost is not None:
        charts.append(cost)
    else:
        notes.append("cost chart: the decision records no monthly cost")
    return charts, notes


_COMPARISONS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": "≥",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "≤",
}
_UNITS = {"Microseconds": "µs", "Percent": "%", "Count": "", "Seconds": "s", "Milliseconds": "ms"}


def _alarms(rec: Mapping[str, Any]) -> list[AlarmRow]:
    monitoring = rec.get("monitoring") or {}
    reasons = {r.get("alarm_name"): r.get("reason", "") for r in monitoring.get("rationale") or ()}
    scaling_alarms = ((rec.get("scaling") or {}).get("aws") or {}).get("alarms") or []
    rows: list[AlarmRow] = []
    for alarm in [*(monitoring.get("alarms") or ()), *scaling_alarms]:
        unit = alarm.get("Unit")
        unit_text = _UNITS.get(unit, unit or "")
        statistic = alarm.get("ExtendedStatistic") or alarm.get("Statistic") or ""
        comparison = _COMPARISONS.get(str(alarm.get("ComparisonOperator")), str(alarm.get("ComparisonOperator", "")))
        threshold = f"{comparison} {alarm.get('Threshold', '?')} {unit_text}".strip()
        rows.append(
            AlarmRow(
                name=str(alarm.get("AlarmName", "")),
                metric=_metric(alarm, statistic),
                threshold=threshold,
                meaning=str(reasons.get(alarm.get("AlarmName")) or alarm.get("AlarmDescription", "")),
            )
        )
    return rows


def _metric(alarm: Mapping[str, Any], statistic: str) -> str:
    """The alarm's metric and statistic, or for metric math the expression it alarms on and the metrics in it."""
    if alarm.get("MetricName"):
        return f"{alarm['MetricName']} {statistic}".strip()
    queries = alarm.get("Metrics") or []
    expression = next((q.get("Expression") for q in queries if q.get("ReturnData") and q.get("Expression")), None)
    names = [
        f"{q['MetricStat']['Metric'].get('MetricName')} {q['MetricStat'].get('Stat', '')}".strip()
        for q in queries
        if isinstance(q.get("MetricStat"), Mapping) and isinstance(q["MetricStat"].get("Metric"), Mapping)
    ]
    return f"{expression or 'metric math'} over {', '.join(names)}" if names else str(expression or "metric math")


def _links(decision_id: str) -> list[tuple[str, str, str]]:
    return [
        ("the audited decision as JSON", "GET", f"/v1/decisions/{decision_id}"),
        ("what-if counterfactuals as JSON", "GET", f"/v1/decisions/{decision_id}/what-if"),
        ("replay: evaluate it again under its ruleset", "POST", f"/v1/decisions/{decision_id}/replay"),
    ]
