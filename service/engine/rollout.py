"""The parts of an answer beyond one Region's fleet: the rollout (``deployment``) with the quota it needs in each
Region, ``availability.multi_region`` and the cost per Region."""

from __future__ import annotations

import dataclasses

import msgspec

from service.contract import Warning, WorkloadProfile
from service.contract.deployment import Deployment
from service.contract.recommendation import ExplanationEntry
from service.engine.compiled import CompiledRuleset
from service.engine.core import Decision
from service.engine.deployment_config import deployment_plan
from service.engine.mode_parts import Parts
from service.engine.multi_region import multi_region_plan, region_cost
from service.engine.quota import quota_plan, quota_warning

__all__ = ["beyond_one_fleet", "rollout"]


def beyond_one_fleet(
    profile: WorkloadProfile,
    ruleset: CompiledRuleset,
    decision: Decision,
    parts: Parts,
    explanation: list[ExplanationEntry],
    warnings: list[Warning],
) -> tuple[Parts, Deployment | None]:
    """``parts`` with ``availability.multi_region`` and the cost per Region, and the rollout."""
    plan = multi_region_plan(profile, ruleset, decision.hosting_mode, warnings)
    regions = plan.regions if plan is not None and plan.recommended else [profile.region]
    deployment = rollout(ruleset, decision, parts, explanation, warnings, regions)
    availability = msgspec.structs.replace(parts.availability, multi_region=plan)
    cost = region_cost(profile, ruleset, parts.cost, plan, warnings)
    return dataclasses.replace(parts, availability=availability, cost=cost), deployment


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
