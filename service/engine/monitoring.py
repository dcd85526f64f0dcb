"""Alarms and tools from the monitoring table, and warnings from the advisories table."""

from __future__ import annotations

from typing import Any

from service.contract import ExplanationEntry, Monitoring, MonitoringRationale, MonitoringTool, Warning
from service.contract.aws import MetricAlarm
from service.engine import aws_payloads as aws
from service.engine.compiled import CompiledRule, CompiledRuleset
from service.rulebook.models import CatalogInstance

__all__ = ["advisories", "explain", "monitoring"]


def explain(table: str, rule: CompiledRule, facts: dict[str, Any]) -> ExplanationEntry:
    return ExplanationEntry(table=table, rule_id=rule.id, matched=rule.matched(facts), outcome=rule.outcome)


def monitoring(
    ruleset: CompiledRuleset,
    facts: dict[str, Any],
    endpoint: str,
    p99_latency_ms: float,
    instance: CatalogInstance,
    per_instance_rps: float,
    explanation: list[ExplanationEntry],
    warnings: list[Warning],
) -> Monitoring:
    table = ruleset.tables.get("monitoring")
    alarms: dict[str, MetricAlarm] = {}
    rationale: list[MonitoringRationale] = []
    tools: dict[str, MonitoringTool] = {}
    gpus = instance.accelerator.count if instance.accelerator and instance.accelerator.kind == "nvidia-gpu" else 0
    for rule in table.collect(facts) if table else ():
        explanation.append(explain("monitoring", rule, facts))
        for spec in rule.then.alarms:
            alarm = aws.monitoring_alarm(
                endpoint,
                spec,
                p99_latency_ms=p99_latency_ms,
                vcpus=instance.vcpus,
                gpus=gpus,
                # The why is in monitoring.rationale; the alarm names its rule (AlarmDescription holds 1024
                # characters, and one rule's reason may cover several alarms).
                because=f"Rule {rule.id}; its reason is in the advisor's monitoring.rationale.",
                per_instance_rps=per_instance_rps,
            )
            if alarm is None:
                warnings.append(
                    Warning(
                        code="alarm_not_applicable",
                        rule_id=rule.id,
                        message=f"{spec.kind} alarm skipped: {instance.type} publishes no such metric.",
                    )
                )
            elif alarm.AlarmName not in alarms:
                alarms[alarm.AlarmName] = alarm
                rationale.append(MonitoringRationale(alarm_name=alarm.AlarmName, rule_id=rule.id, reason=rule.because))
        for tool in rule.then.tools:
            tools.setdefault(tool, MonitoringTool(tool=tool, why=rule.because, rule_id=rule.id))
    return Monitoring(alarms=list(alarms.values()), tools=list(tools.values()), rationale=rationale)


def advisories(
    ruleset: CompiledRuleset,
    facts: dict[str, Any],
    explanation: list[ExplanationEntry],
    warnings: list[Warning],
) -> None:
    table = ruleset.tables.get("advisories")
    for rule in table.collect(facts) if table else ():
        explanation.append(explain("advisories", rule, facts))
        warnings.append(Warning(code=rule.then.warning, message=rule.because, rule_id=rule.id))
