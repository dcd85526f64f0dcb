"""The answer's ``deployment`` part: the rollout (``deployment_config``) and the quota it needs."""

from __future__ import annotations

import msgspec

from service.contract import Warning
from service.contract.deployment import Deployment
from service.contract.recommendation import ExplanationEntry
from service.engine.compiled import CompiledRuleset
from service.engine.core import Decision
from service.engine.deployment_config import deployment_plan
from service.engine.mode_parts import Parts
from service.engine.quota import quota_plan, quota_warning

__all__ = ["rollout"]


def rollout(
    ruleset: CompiledRuleset,
    decision: Decision,
    parts: Parts,
    explanation: list[ExplanationEntry],
    warnings: list[Warning],
    regions: list[str] | None = None,
) -> Deployment | None:
    """The deployment table's rollout and, where there are instances, the per-Region quota it needs."""
    mode = decision.hosting_mode
    capacity = parts.capacity
    min_instances = capacity.min_instances if capacity is not None else 0
    context = (mode, min_instances, parts.hosting.startup_s)
    plan = deployment_plan(ruleset, decision.facts, context, parts.monitoring.alarms, explanation)
    if plan is None:
        return None
    if capacity is None:  # serverless: AWS places the capacity
        return plan.deployment
    quota = quota_plan(decision.instance.type, capacity.max_instances, plan, regions or [ruleset.catalog.region])
    warning = quota_warning(quota, decision.instance.family)
    if warning is not None:
        warnings.append(warning)
    return msgspec.structs.replace(plan.deployment, quota=quota)
