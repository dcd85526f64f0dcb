"""Beyond one Region: whether the objective needs a second Region, its plan and cost, and prices per Region.

The availability table's ``multi_region`` block holds AWS's single-Region commitment (a rule-file value with its
source) and the second Region for each primary. The catalog prices one Region; a profile in another gets
``prices_known: false`` and null figures instead of borrowed prices.
"""

from __future__ import annotations

import msgspec

from service.contract import CostEstimate, Warning, WorkloadProfile
from service.contract.regions import MultiRegionCost, MultiRegionPlan
from service.engine.capacity import fmt
from service.engine.compiled import CompiledRuleset
from service.rulebook.region_models import MultiRegionLimits

__all__ = ["multi_region_plan", "region_cost", "region_factor", "regions_of"]

FAILOVER = [
    "Route 53 HTTP and HTTPS health checks cannot sign the SigV4 requests InvokeEndpoint needs, so they cannot "
    "probe the endpoint: give each Region's DNS record a health check on a CloudWatch alarm (a composite of that "
    "Region's error and latency alarms), or on a front end of yours (API Gateway, a load balancer) that calls it.",
    "Callers of InvokeEndpoint through an AWS SDK can fail over themselves: on 5xx or a timeout, retry against the "
    "other Region's endpoint.",
    "CloudWatch alarms and Application Auto Scaling are Regional: create the scaling and health alarms in every "
    "Region of the plan.",
]
PREREQUISITES = [
    "Model artifacts in an S3 bucket of each Region (ContainerDefinition.ModelDataUrl must be in the endpoint's "
    "Region): S3 replication or a copy per release.",
    "The container image in each Region's ECR (the image must be in the endpoint's Region): ECR replication.",
    "Instance quotas ('<type> for endpoint usage') raised in each Region, deployment surge included "
    "(deployment.quota.per_region).",
    "A KMS key in each Region for the endpoint's volume and the outputs (KMS keys are Regional; multi-Region keys "
    "share one key material).",
    "An execution role allowed in both Regions, and the VPC, subnets and security groups created in each.",
]


def _limits(ruleset: CompiledRuleset) -> MultiRegionLimits | None:
    table = ruleset.source.tables.get("availability")
    limits: MultiRegionLimits | None = getattr(table, "multi_region", None)
    return limits


def regions_of(profile: WorkloadProfile, ruleset: CompiledRuleset) -> list[str]:
    """The Regions of the plan, the profile's first; one unless the objective exceeds one Region's commitment."""
    limits = _limits(ruleset)
    if limits is None or profile.sla.availability <= limits.single_region_sla:
        return [profile.region]
    second = limits.second_region.get(profile.region)
    return [profile.region, second] if second else [profile.region]


def region_factor(profile: WorkloadProfile, ruleset: CompiledRuleset, mode: str) -> float:
    """How many primary plans the whole plan costs: 1 plus the second Region's share where there is one."""
    limits = _limits(ruleset)
    if limits is None or mode == "batch_transform" or len(regions_of(profile, ruleset)) < 2:
        return 1.0
    return 1.0 + limits.standby_share


def multi_region_plan(
    profile: WorkloadProfile, ruleset: CompiledRuleset, mode: str, warnings: list[Warning]
) -> MultiRegionPlan | None:
    limits = _limits(ruleset)
    if limits is None:
        return None
    sla, objective = limits.single_region_sla, profile.sla.availability
    regions = regions_of(profile, ruleset)
    above = objective > sla
    if above and mode != "batch_transform":
        warnings.append(
            Warning(
                code="exceeds_single_region_sla",
                message=f"sla.availability {fmt(objective)} is above the {fmt(sla * 100)}% AWS commits to for one "
                "Region's endpoint (sla_source in availability.multi_region): "
                + (
                    f"the plan adds {regions[1]} (availability.multi_region)."
                    if len(regions) > 1
                    else f"no second Region is listed for {profile.region} in the rules; choose one in the same "
                    "partition."
                ),
            )
        )
    if mode == "batch_transform":
        reason = "A transform job has no endpoint to keep up: a failed run is rerun, in another Region if need be."
        return _plan(limits, [profile.region], False, reason, "single_region")
    if not above:
        reason = (
            f"sla.availability {fmt(objective)} is within the {fmt(sla * 100)}% AWS commits to for one Region's "
            "endpoint of more than one instance: the multi-AZ plan covers it."
        )
        return _plan(limits, regions, False, reason, "single_region")
    topology = "active_active" if limits.standby_share >= 1 else "warm_standby"
    reason = (
        f"sla.availability {fmt(objective)} is above the {fmt(sla * 100)}% one Region's endpoint is committed to: "
        + (
            f"{regions[1]} runs {'the same plan, active-active' if topology == 'active_active' else 'a warm standby'}"
            f" ({fmt(limits.standby_share * 100)}% of it). "
            if len(regions) > 1
            else "add a second Region in the same partition. "
        )
        + limits.source.strip()
    )
    return _plan(limits, regions, True, reason, topology)


def _plan(
    limits: MultiRegionLimits, regions: list[str], recommended: bool, reason: str, topology: str
) -> MultiRegionPlan:
    return MultiRegionPlan(
        recommended=recommended,
        regions=regions,
        reason=reason,
        single_region_sla=limits.single_region_sla,
        sla_source=limits.sla_source.strip(),
        topology=topology,  # type: ignore[arg-type]
        standby_share=limits.standby_share if recommended else 0.0,
        failover=list(FAILOVER) if recommended else [],
        prerequisites=list(PREREQUISITES) if recommended else [],
    )


def region_cost(
    profile: WorkloadProfile,
    ruleset: CompiledRuleset,
    cost: CostEstimate,
    plan: MultiRegionPlan | None,
    warnings: list[Warning],
) -> CostEstimate:
    """The cost in the profile's Region: null figures where the catalog does not price it; the second Region's."""
    catalog_region = ruleset.catalog.region
    second = None
    if plan is not None and plan.recommended and len(plan.regions) > 1:
        second = _second_region_cost(cost, plan, catalog_region, profile.region == catalog_region, warnings)
    if profile.region == catalog_region:
        return msgspec.structs.replace(cost, multi_region=second)
    return msgspec.structs.replace(
        cost,
        usd_per_hour=None,
        usd_per_month=None,
        usd_per_month_expected=None,
        usd_per_month_min=None,
        usd_per_month_peak=None,
        usd_per_million_requests=None,
        region=profile.region,
        prices_known=False,
        basis=f"Prices unknown: the catalog prices {catalog_region} only, and prices differ by Region. The plan is "
        f"the same; price it from the AWS Price List for {profile.region}. " + cost.basis,
        multi_region=second,
    )


def _second_region_cost(
    cost: CostEstimate, plan: MultiRegionPlan, catalog_region: str, priced: bool, warnings: list[Warning]
) -> MultiRegionCost:
    second_region = plan.regions[1]
    expected = cost.usd_per_month_expected
    if not priced or expected is None:
        return MultiRegionCost(
            regions=plan.regions,
            second_region_usd_per_month_expected=None,
            usd_per_month_expected_total=None,
            basis=f"Prices unknown outside {catalog_region}.",
        )
    second = round(expected * plan.standby_share, 2)
    warnings.append(
        Warning(
            code="second_region_priced_as_catalog_region",
            message=f"{second_region} is priced at the catalog's {catalog_region} prices (the catalog has no other "
            f"Region's); check the AWS Price List for {second_region} before relying on the total.",
        )
    )
    return MultiRegionCost(
        regions=plan.regions,
        second_region_usd_per_month_expected=second,
        usd_per_month_expected_total=round(expected + second, 2),
        basis=f"{second_region} runs {fmt(plan.standby_share * 100)}% of the plan: {fmt(expected)} x "
        f"{fmt(plan.standby_share)} = {fmt(second)} USD a month, at {catalog_region} prices (assumed).",
    )
