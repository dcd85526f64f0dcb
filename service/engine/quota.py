"""The per-Region instance quota an answer needs: the autoscaling maximum, and that plus the deployment's surge.

SageMaker's quotas are per account, per Region and per instance type, named '<type> for endpoint usage'
(AWS Service Quotas, service SageMaker); they are independent of EC2's, and new accounts often hold 0 for
accelerator types (fact sheet §7, from issue threads: the defaults per type are not documented).
"""

from __future__ import annotations

from service.contract import Warning
from service.contract.deployment import Quota, RegionQuota
from service.engine.deployment_config import RolloutPlan, surge

__all__ = ["ACCELERATED_FAMILIES", "quota_plan", "quota_warning"]

ACCELERATED_FAMILIES = frozenset({"g", "p", "inf"})


def quota_plan(instance_type: str, max_instances: int, rollout: RolloutPlan, regions: list[str]) -> Quota:
    """Steady = MaxCapacity; during deployment = steady + the surge at that maximum; the same in every Region."""
    extra = surge(rollout.outcome, max_instances)
    during = max_instances + extra
    how = (
        f"a second fleet of {max_instances} (blue/green provisions the whole new fleet before traffic moves)"
        if rollout.outcome.strategy == "blue_green"
        else f"one batch, ceil({max_instances} x {rollout.outcome.batch_percent}%) = {extra}"
    )
    return Quota(
        instance_type=instance_type,
        quota_name=f"{instance_type} for endpoint usage",
        steady=max_instances,
        during_deployment=during,
        per_region=[RegionQuota(region=r, steady=max_instances, during_deployment=during) for r in regions],
        steps=[
            f"steady = the autoscaling maximum, {max_instances} x {instance_type}",
            f"during deployment = {max_instances} + {how} = {during}",
        ],
    )


def quota_warning(quota: Quota, family: str) -> Warning | None:
    """For accelerator types: their quotas often start at zero; where to ask for more."""
    if family not in ACCELERATED_FAMILIES:
        return None
    regions = ", ".join(r.region for r in quota.per_region)
    return Warning(
        code="accelerator_quota",
        message=f"Accelerator quotas often start at 0 or a few instances per account: check '{quota.quota_name}' "
        f"in Service Quotas (service Amazon SageMaker) in {regions} and ask for at least {quota.during_deployment} "
        f"(the autoscaling maximum {quota.steady} plus the deployment's surge) before the first deployment; "
        "SageMaker's quotas are separate from EC2's.",
    )
