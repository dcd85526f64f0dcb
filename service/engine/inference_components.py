"""Inference components: one model's copies on an endpoint whose instances it shares with other models.

Each copy reserves the model's memory (x the sizing rule's headroom) on an instance of the chosen type, and
``limits.inference_components.cpu_cores_per_copy`` vCPUs or, where its memory already reserves a larger share of the
instance, the cores of that share (in quarter cores); its rate is assumed to be the instance's in proportion to the
cores (the answer warns). The copies are planned as the real-time fleet is (``capacity.plan_capacity`` and
``scaling_target`` with a copy as the unit), balanced over the AZs, and the instances of each AZ are the ones its
copies need, so the AZ-loss guarantee of the copies holds for the instances that carry them. The cost is the
model's reserved share of those instances: the other models' copies pay the rest.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import msgspec

from service.contract import AvailabilityPlan, Capacity, CostEstimate, ScalingPlan, Warning, WorkloadProfile
from service.contract.recommendation import AwsScaling, HostingAws
from service.engine import hosting_payloads as payloads
from service.engine.capacity import CapacityPlan, ScalingTarget, fmt, plan_capacity, scaling_target, spread
from service.engine.core import Decision, peak_instances
from service.engine.cost import HOURS_PER_MONTH
from service.engine.mode_parts import INSTANCE_METRICS, Parts
from service.rulebook.hosting_models import HostingLimits, InferenceComponentsLimits

__all__ = ["CopyPlan", "adapt_components", "component_cost", "component_rejection", "plan_copies", "unsuitable"]


@dataclass(frozen=True, slots=True)
class CopyPlan:
    """Copies (min, at the peak, max), what one reserves, and the instances they occupy per AZ."""

    cores: float
    memory_mb: int
    copy_rps: float  # one copy's assumed rate
    per_instance: int  # copies one instance holds
    share: float  # of one instance reserved per copy: the larger of its cores' and its memory's share
    peak: CapacityPlan  # the static plan of copies at the peak
    target: ScalingTarget  # per copy
    min_copies: int
    copies: int  # where target tracking settles under the peak
    max_copies: int
    per_az_copies: list[int]
    per_az: list[int]  # instances per AZ at the peak
    min_instances: int
    max_instances: int
    steps: list[str]

    @property
    def instances(self) -> int:
        return sum(self.per_az)


def unsuitable(profile: WorkloadProfile, limits: HostingLimits) -> str | None:
    """Why the model is not one to run as a shared inference component (the hosting rule's conditions), or None."""
    ic, w = limits.inference_components, profile.workload
    if ic is None:
        return "the hosting table gives no inference_components limits to size copies by"
    if not w.shares_endpoint:
        return (
            "the profile describes one model alone on its endpoint (workload.shares_endpoint false): inference "
            "components pay off when several models share an endpoint's instances"
        )
    if w.bound == "gpu":
        return (
            "a GPU model's copy reserves whole accelerator devices (NumberOfAcceleratorDevicesRequired at least 1): "
            "sharing pays only on multi-GPU instances, which this advisor does not plan"
        )
    if w.model_memory_gib is None:
        return "workload.model_memory_gib is not given: a copy's MinMemoryRequiredInMb cannot be sized"
    if w.model_memory_gib > ic.max_model_memory_gib:
        return (
            f"the model ({fmt(w.model_memory_gib)} GiB) is above the {fmt(ic.max_model_memory_gib)} GiB a copy may "
            "hold and leave room for the other models"
        )
    load = peak_instances(profile)
    if load is None or load > ic.max_peak_instances:
        return (
            f"the peak needs {fmt(load or 0)} instances' worth (above {fmt(ic.max_peak_instances)}): a fleet of its "
            "own wastes little"
        )
    return None


def _instances(copies: int, az_count: int, per_instance: int) -> list[int]:
    """Instances per AZ holding ``copies`` balanced over the AZs (at most one copy apart)."""
    return [math.ceil(c / per_instance) for c in spread(copies, az_count)]


def plan_copies(profile: WorkloadProfile, decision: Decision, ic: InferenceComponentsLimits) -> CopyPlan:
    inst, u = decision.instance, decision.utilization
    memory_mb_instance = inst.memory_gib * 1024
    headroom = decision.sizing_rule.then.memory_headroom
    memory_mb = max(ic.min_memory_mb, math.ceil((profile.workload.model_memory_gib or 0) * headroom * 1024))
    # The least reservation, raised (in quarter cores) to the cores of the instance share the copy's memory already
    # reserves: the copy pays for that share whatever its cores, so it may as well serve with them.
    paid = math.floor(inst.vcpus * memory_mb / memory_mb_instance * 4) / 4
    cores = min(max(ic.cpu_cores_per_copy, paid), float(inst.vcpus))
    per_instance = min(int(inst.vcpus // cores), int(memory_mb_instance // memory_mb))
    if per_instance < 1:  # the type was chosen because the model fits it; a custom ruleset may differ
        raise ValueError(f"a copy of {memory_mb} MB does not fit {inst.type}")
    copy_rps = decision.per_instance_rps * cores / inst.vcpus
    avail, k, t = decision.availability_rule.then, decision.az_count, profile.traffic

    plan = functools.partial(
        plan_capacity,
        per_instance_rps=copy_rps,
        target_utilization=u,
        az_count=k,
        survives_az_loss=avail.survives_az_loss,
        degraded_utilization=avail.degraded_utilization,
        floor=decision.floor,
    )
    peak = plan(rps=t.rps_at_peak)
    baseline = plan(rps=t.mean_rps) if t.mean_rps is not None else peak
    target, copies, max_copies = _copy_target(decision, copy_rps, baseline.instances, peak.instances, t.rps_at_peak)
    share = max(cores / inst.vcpus, memory_mb / memory_mb_instance)
    per_az = _instances(copies, k, per_instance)
    steps = [
        f"a copy reserves {fmt(cores)} of {inst.vcpus} vCPUs and {memory_mb} MB (model "
        f"{fmt(profile.workload.model_memory_gib or 0)} GiB x headroom {fmt(headroom)}, at least {ic.min_memory_mb}) "
        f"of {fmt(memory_mb_instance)} MB: {per_instance} copies per {inst.type}, {fmt(round(share, 4))} of one each",
        f"copy rate = {fmt(decision.per_instance_rps)} rps x {fmt(cores)} / {inst.vcpus} vCPUs = {fmt(copy_rps)} rps "
        "(assumed in proportion to the cores)",
        *(
            f"copies: {s}".replace("per instance", "per copy").replace(" instances", " copies")
            for s in (*peak.steps, *target.steps)
        ),
        f"copies at the peak {copies} ({' + '.join(map(str, spread(copies, k)))} across AZs), min "
        f"{baseline.instances}, max {max_copies}",
        f"instances per AZ = ceil(copies in the AZ / {per_instance}) = {per_az}",
    ]
    return CopyPlan(
        cores,
        memory_mb,
        copy_rps,
        per_instance,
        share,
        peak,
        target,
        target.min_instances,
        copies,
        max_copies,
        spread(copies, k),
        per_az,
        sum(_instances(target.min_instances, k, per_instance)),
        sum(_instances(max_copies, k, per_instance)),
        steps,
    )


def _copy_target(
    decision: Decision, copy_rps: float, min_copies: int, peak_copies: int, peak_rps: float
) -> tuple[ScalingTarget, int, int]:
    """The AZ-safe target per copy, the copies it settles at under the peak, and MaxCapacity holding them.

    The target depends on max (the worst fleet size in [min, max]), and max must hold the copies the target
    settles at under the peak, so it is recomputed until both hold (two or three rounds, as for real-time fleets).
    """
    avail, k = decision.availability_rule.then, decision.az_count
    factor = decision.scaling_rule.then.max_capacity_factor
    max_copies = _round_up(max(peak_copies, math.ceil(peak_copies * factor)), k)
    for _ in range(4):
        target = scaling_target(
            per_instance_rps=copy_rps,
            target_utilization=decision.utilization,
            az_count=k,
            survives_az_loss=avail.survives_az_loss,
            degraded_utilization=avail.degraded_utilization,
            min_instances=min_copies,
            max_instances=max_copies,
        )
        copies = target.instances_for(peak_rps)
        if copies <= max_copies:
            break
        max_copies = _round_up(copies, k)
    return target, copies, max_copies


def _round_up(n: int, multiple: int) -> int:
    return n if multiple <= 1 or n % multiple == 0 else n + multiple - n % multiple


def _copy_hours(profile: WorkloadProfile, plan: CopyPlan) -> tuple[float, str]:
    """Copy-hours a month on the expected basis of the real-time fleet: the copies at the peak for a share
    mean/peak of the month, the minimum for the rest (the peak all month without mean_rps)."""
    t = profile.traffic
    if t.mean_rps is None:
        return plan.copies * HOURS_PER_MONTH, f"the peak's {plan.copies} copies all month (no mean_rps)"
    f = t.mean_rps / t.rps_at_peak
    return (
        (plan.min_copies * (1 - f) + plan.copies * f) * HOURS_PER_MONTH,
        f"{plan.copies} copies for a peak share mean/peak = {fmt(f)} of the month, {plan.min_copies} the rest",
    )


def component_cost(profile: WorkloadProfile, decision: Decision, plan: CopyPlan, base: CostEstimate) -> CostEstimate:
    """The model's reserved share of the shared instances (``base``: the real-time estimate, for its price date)."""
    t, price = profile.traffic, decision.instance.usd_per_hour
    per_copy_hour = plan.share * price
    copy_hours, how = _copy_hours(profile, plan)
    rps_basis = t.mean_rps if t.mean_rps is not None else t.rps_at_peak
    expected = copy_hours * per_copy_hour
    peak = plan.copies * per_copy_hour * HOURS_PER_MONTH
    return CostEstimate(
        usd_per_hour=round(plan.copies * per_copy_hour, 4),
        usd_per_month=round(peak, 2),
        usd_per_month_expected=round(expected, 2),
        usd_per_month_min=round(plan.min_copies * per_copy_hour * HOURS_PER_MONTH, 2),
        usd_per_month_peak=round(peak, 2),
        usd_per_million_requests=round(expected / HOURS_PER_MONTH / (rps_basis * 3600) * 1_000_000, 4),
        price_as_of=base.price_as_of,
        region=base.region,
        basis=f"inference components: this model's reserved share of shared {decision.instance.type} instances, "
        f"{fmt(round(plan.share, 4))} of one per copy; the endpoint's other models pay the rest; expected copies: "
        f"{how}; illustrative list price of {base.price_as_of}",
        formula=f"expected {fmt(round(copy_hours, 2))} copy-hours/month x {fmt(round(plan.share, 4))} x {fmt(price)} "
        f"USD/h; min {plan.min_copies} and peak {plan.copies} copies x {HOURS_PER_MONTH} h",
    )


def component_rejection(profile: WorkloadProfile, decision: Decision, limits: HostingLimits) -> str:
    """Why inference components were not chosen: what rules them out, else what they would cost."""
    if profile.sla.delivery == "batch":
        return "the input is a dataset in S3 (sla.delivery batch): a transform job runs only for its hours"
    why = unsuitable(profile, limits)
    if why is not None or limits.inference_components is None:
        return why or ""
    plan = plan_copies(profile, decision, limits.inference_components)
    usd = _copy_hours(profile, plan)[0] * plan.share * decision.instance.usd_per_hour
    return (
        f"the hosting table chose another mode first; as a shared component ({plan.copies} copies) its reserved "
        f"share would cost about {fmt(round(usd, 2))} USD a month expected"
    )


def adapt_components(
    profile: WorkloadProfile, decision: Decision, limits: HostingLimits, parts: Parts, warnings: list[Warning]
) -> Parts:
    """The real-time ``parts`` turned into one model's inference component on a shared endpoint."""
    ic = limits.inference_components
    if ic is None:  # the hosting rule chose the mode; a custom ruleset may lack the limits
        raise ValueError("the hosting table chose inference_components without limits.inference_components")
    assert parts.capacity is not None and parts.scaling is not None
    plan = plan_copies(profile, decision, ic)
    endpoint = profile.name or "my-endpoint"
    startup = parts.hosting.startup_s
    config = payloads.component_endpoint_config(
        endpoint, decision.instance.type, (plan.instances, plan.min_instances, plan.max_instances)
    )
    component = payloads.inference_component(endpoint, (plan.cores, plan.memory_mb), plan.copies, startup)
    hosting = msgspec.structs.replace(
        parts.hosting,
        reason=f"Inference components: {plan.copies} copies of {fmt(plan.cores)} vCPU and {plan.memory_mb} MB on "
        f"shared {decision.instance.type} instances ({plan.per_instance} copies fit one), {plan.min_copies} to "
        f"{plan.max_copies} copies.",
        aws=HostingAws(create_endpoint_config=config, create_inference_component=component),
        steps=[plan.steps[0], plan.steps[1], plan.steps[-1]],
    )
    cost = component_cost(profile, decision, plan, parts.cost)
    watch = msgspec.structs.replace(
        parts.monitoring, alarms=[a for a in parts.monitoring.alarms if a.MetricName not in INSTANCE_METRICS]
    )
    warnings.extend(_warnings(decision, plan, cost))
    return Parts(
        hosting,
        _capacity(profile, decision, plan, parts.capacity),
        _scaling(decision, plan, parts, endpoint),
        _availability(profile, decision, plan, parts),
        watch,
        cost,
    )


def _capacity(profile: WorkloadProfile, decision: Decision, plan: CopyPlan, base: Capacity) -> Capacity:
    """The instances this model's copies occupy; utilisations are of the copies' reserved rate."""
    peak_rps, k = profile.traffic.rps_at_peak, decision.az_count
    after_loss = None
    if decision.multi_az and k >= 2:
        after_loss = round(peak_rps / ((plan.copies - plan.per_az_copies[0]) * plan.copy_rps), 4)
    return msgspec.structs.replace(
        base,
        base_instances=sum(_instances(plan.peak.base, k, plan.per_instance)),
        az_safe_instances=sum(_instances(plan.peak.az_safe, k, plan.per_instance)) if plan.peak.az_safe else 0,
        instances=plan.instances,
        min_instances=plan.min_instances,
        max_instances=plan.max_instances,
        per_az=plan.per_az,
        utilization_at_peak=round(peak_rps / (plan.copies * plan.copy_rps), 4),
        utilization_at_peak_after_az_loss=after_loss,
        formula=f"copies at peak = max(min {plan.min_copies}, ceil({fmt(peak_rps)} rps / target "
        f"{fmt(plan.target.per_instance_rps)} rps per copy)) = {plan.copies}; instances = the ones those copies "
        f"need, {plan.per_instance} per instance, per AZ: {' + '.join(map(str, plan.per_az))}",
        steps=[*base.steps[: len(decision.selection.basis_steps)], *plan.steps],
    )


def _scaling(decision: Decision, plan: CopyPlan, parts: Parts, endpoint: str) -> ScalingPlan:
    assert parts.scaling is not None
    outcome = decision.scaling_rule.then
    cooldowns = (outcome.scale_in_cooldown_s, max(outcome.scale_out_cooldown_s, math.ceil(parts.hosting.startup_s)))
    register, policy = payloads.component_scaling(
        endpoint, (plan.min_copies, plan.max_copies), plan.target.per_minute, cooldowns
    )
    rule = decision.hosting_rule
    return msgspec.structs.replace(
        parts.scaling,
        method="target_tracking",
        rule_id=rule.id if rule else parts.scaling.rule_id,
        reason="The model's copies scale on their own (sagemaker:inference-component:DesiredCopyCount): target "
        "tracking on SageMakerInferenceComponentInvocationsPerCopy; the endpoint adds and removes instances as "
        "copies need them (ManagedInstanceScaling). Step and scheduled policies are not planned for components.",
        target_value=plan.target.per_minute,
        formula=f"TargetValue = {fmt(plan.target.per_minute)} invocations per copy per minute (the copy's "
        f"{fmt(plan.copy_rps)} rps at the AZ-safe planned utilisation x 60); copies {plan.min_copies} to "
        f"{plan.max_copies}",
        aws=AwsScaling(register_scalable_target=register, scaling_policies=[policy], scheduled_actions=[], alarms=[]),
    )


def _availability(profile: WorkloadProfile, decision: Decision, plan: CopyPlan, parts: Parts) -> AvailabilityPlan:
    k = decision.az_count
    if k < 2:
        note = "One AZ: an AZ loss stops the copies until SageMaker places them again."
    else:
        left = plan.copies - plan.per_az_copies[0]
        peak = profile.traffic.rps_at_peak
        note = (
            f"Copies are balanced over {k} AZs (AvailabilityZoneBalance, at most one apart; PERMISSIVE, botocore's "
            f"only mode, so a shortage of capacity in an AZ can unbalance them): losing the largest AZ "
            f"({plan.per_az_copies[0]} copies on {plan.per_az[0]} instances) leaves {left} copies carrying "
            f"{fmt(peak)} rps at {fmt(round(peak / (left * plan.copy_rps), 4))} "
            "of their rate; ManagedInstanceScaling adds instances for the copies scaled out meanwhile."
        )
    return msgspec.structs.replace(parts.availability, mode_note=note)


def _warnings(decision: Decision, plan: CopyPlan, cost: CostEstimate) -> list[Warning]:
    """What the component plan assumes: the copy's rate, who pays the instances, the endpoint's other models."""
    inst = decision.instance
    full = plan.instances * inst.usd_per_hour * HOURS_PER_MONTH
    return [
        Warning(
            code="copy_rate_assumed",
            message=f"A copy's rate is assumed to be the instance's {fmt(decision.per_instance_rps)} rps x "
            f"{fmt(plan.cores)} / {inst.vcpus} vCPUs = {fmt(plan.copy_rps)} rps, with the same latency: load-test one "
            f"copy (NumberOfCpuCoresRequired {fmt(plan.cores)}) and plan with its rate.",
        ),
        Warning(
            code="cost_is_reserved_share",
            message=f"The cost is this model's reserved share ({fmt(round(plan.share, 4))} of an {inst.type} per "
            f"copy); the other models on the endpoint pay the rest. The {plan.instances} instances its copies "
            f"occupy cost {fmt(round(full, 2))} USD a month in full: that is the cost while no other model shares "
            f"them (expected share: {fmt(cost.usd_per_month_expected)} USD).",
        ),
        Warning(
            code="shared_endpoint_bounds",
            message=f"The endpoint's InitialInstanceCount and ManagedInstanceScaling ({plan.min_instances} to "
            f"{plan.max_instances} instances) cover this model's copies only: add the other models' before applying "
            "the endpoint configuration. The latency and error alarms name the endpoint's variant, so they see every "
            "model on it; instance alarms are left out (the instances are shared).",
        ),
    ]
