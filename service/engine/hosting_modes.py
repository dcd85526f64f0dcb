"""The answer for each hosting mode, built from the real-time parts the engine computes first.

The instance choice and counts are the same arithmetic in every instance mode; what changes is how the instances
are requested and scaled, what availability means and what is billed:

- ``serverless``: no instance, capacity or per-AZ split; ``ServerlessConfig`` and, with provisioned concurrency,
  target tracking on its utilisation; cost per GB-second and GB processed (``serverless``).
- ``asynchronous``: ``AsyncInferenceConfig``, ``MinCapacity`` 0, target tracking on the backlog per instance and
  the step policy on ``HasBacklogWithoutCapacity`` that starts the first instance; billed for the instance-hours
  that run; an AZ loss delays queued requests instead of failing them.
- ``inference_components``: the model's copies on shared instances (``inference_components``): the endpoint
  configuration with ``ManagedInstanceScaling``, ``CreateInferenceComponent``, the copy count scaled on invocations
  per copy; the cost is the model's reserved share of the instances.
- ``batch_transform``: ``CreateTransformJob`` on a transform-capable type; no endpoint, scaling or endpoint
  alarms; billed for job hours.
"""

from __future__ import annotations

import dataclasses
import math

import msgspec

from service.contract import ScalingPlan, Warning, WorkloadProfile
from service.contract.recommendation import AwsScaling, HostingAws, HostingRejection
from service.engine import hosting_payloads as payloads
from service.engine.capacity import fmt
from service.engine.core import Decision, processing_s
from service.engine.cost import priced
from service.engine.inference_components import adapt_components, component_rejection
from service.engine.mode_cost import asynchronous_cost, batch_cost, batch_instances
from service.engine.mode_parts import INSTANCE_METRICS, Parts
from service.engine.scaling_plan import PREDICTIVE_UNAVAILABLE
from service.engine.serverless import SECONDS_PER_MONTH, ServerlessPlan, plan_serverless, serverless_cost
from service.rulebook.hosting_models import HostingLimits

__all__ = ["Parts", "adapt", "rejections"]

# Warnings about an always-on endpoint fleet, which serverless and batch transform do not run.
_FLEET_WARNINGS = frozenset(
    {
        "az_loss_overload",
        "near_idle_fleet",
        "single_instance",
        "scale_out_slower_than_burst",
        "periodic_without_windows",
        "peak_window_without_end",
        "schedule_not_shifted",
        "scheduled_without_windows",
        "window_hours_unknown",
        "no_headroom_for_bursts",
        "endpoint_config_adjusted",
    }
)


def adapt(
    profile: WorkloadProfile, decision: Decision, limits: HostingLimits, parts: Parts, warnings: list[Warning]
) -> Parts:
    """The real-time ``parts`` turned into the chosen mode's, with ``hosting.rejected`` for every other mode."""
    mode = decision.hosting_mode
    rule = decision.hosting_rule
    real_time_usd = priced(parts.cost.usd_per_month_expected)
    if mode in ("serverless", "batch_transform"):
        warnings[:] = [w for w in warnings if w.code not in _FLEET_WARNINGS]
        if mode == "serverless":
            warnings[:] = [w for w in warnings if w.code not in ("untested_instance_type", "throughput_extrapolated")]
    if mode == "serverless":
        parts = _serverless(profile, decision, limits, parts)
        warnings.extend(_serverless_warnings(profile, limits))
    elif mode == "asynchronous":
        parts = _asynchronous(profile, decision, limits, parts)
    elif mode == "batch_transform":
        parts = _batch(profile, decision, limits, parts, warnings)
    elif mode == "inference_components":
        warnings[:] = [w for w in warnings if w.code not in _FLEET_WARNINGS]
        parts = adapt_components(profile, decision, limits, parts, warnings)
    reason = parts.hosting.reason if rule is None else f"{rule.because.strip()} {parts.hosting.reason}"
    hosting = msgspec.structs.replace(
        parts.hosting,
        mode=mode,
        reason=reason,
        rule_id=rule.id if rule is not None else None,
        rejected=rejections(profile, decision, limits, real_time_usd),
    )
    return dataclasses.replace(parts, hosting=hosting)


def _serverless(profile: WorkloadProfile, decision: Decision, limits: HostingLimits, parts: Parts) -> Parts:
    plan = plan_serverless(profile, limits.serverless, decision.utilization, provisioned=not profile.sla.cold_start_ok)
    if isinstance(plan, str):  # the hosting rule's conditions are the same limits; a custom ruleset may differ
        raise ValueError(f"the hosting table chose serverless, but {plan}")
    endpoint = parts.hosting.aws.create_endpoint_config
    name = endpoint.EndpointConfigName.removesuffix("-config") if endpoint else "my-endpoint"
    scaling = None
    if plan.provisioned is not None:
        cooldowns = (decision.scaling_rule.then.scale_in_cooldown_s, decision.scaling_rule.then.scale_out_cooldown_s)
        register, policy = payloads.serverless_scaling(
            name, plan.provisioned, plan.max_concurrency, round(decision.utilization, 4), cooldowns
        )
        scaling = ScalingPlan(
            method="target_tracking",
            rule_id=decision.hosting_rule.id if decision.hosting_rule else decision.scaling_rule.id,
            reason="Provisioned concurrency keeps warm capacity for the mean load (cold starts are not acceptable) "
            "and follows its utilisation (SageMakerVariantProvisionedConcurrencyUtilization).",
            target_value=round(decision.utilization, 4),
            formula=f"TargetValue = target utilisation {fmt(decision.utilization)} of the provisioned concurrency",
            aws=AwsScaling(
                register_scalable_target=register, scaling_policies=[policy], scheduled_actions=[], alarms=[]
            ),
            unavailable_methods=[PREDICTIVE_UNAVAILABLE],
        )
    config = payloads.serverless_endpoint_config(name, plan.memory_mb, plan.max_concurrency, plan.provisioned)
    hosting = msgspec.structs.replace(
        parts.hosting,
        reason=f"Serverless: {plan.memory_mb} MB, at most {plan.max_concurrency} requests in flight"
        + (f", {plan.provisioned} provisioned." if plan.provisioned else ", no provisioned concurrency."),
        aws=HostingAws(create_endpoint_config=config),
        steps=list(plan.steps),
    )
    availability = msgspec.structs.replace(
        parts.availability,
        mode_note="Serverless capacity is placed by AWS: there is no instance count or per-AZ split to plan.",
    )
    watch = msgspec.structs.replace(
        parts.monitoring, alarms=[a for a in parts.monitoring.alarms if a.MetricName not in INSTANCE_METRICS]
    )
    cost = serverless_cost(profile, plan, limits.serverless)
    return Parts(hosting, None, scaling, availability, watch, cost)


def _serverless_warnings(profile: WorkloadProfile, limits: HostingLimits) -> list[Warning]:
    """What the serverless plan had to assume."""
    w, out = profile.workload, []
    if w.payload_kib is None or w.response_kib is None:
        out.append(
            Warning(
                code="payload_size_unknown",
                message=f"workload.payload_kib or response_kib not given: serverless takes at most "
                f"{fmt(limits.serverless.max_payload_kib)} KiB each way, assumed met; the data-processed charge "
                "covers only the sizes given.",
            )
        )
    out.append(
        Warning(
            code="serverless_price_illustrative",
            message="The serverless cost uses illustrative prices (limits.serverless.price_source), not the AWS "
            "price list: check them before comparing with instance prices.",
        )
    )
    return out


def _asynchronous(profile: WorkloadProfile, decision: Decision, limits: HostingLimits, parts: Parts) -> Parts:
    assert parts.capacity is not None and parts.scaling is not None
    config = parts.hosting.aws.create_endpoint_config
    assert config is not None
    name = config.EndpointConfigName.removesuffix("-config")
    rate = decision.per_instance_rps
    work = processing_s(profile) or 1 / rate
    per_instance = min(max(math.ceil(rate * work), 1), 1000)
    # One instance to start; the policies scale it to zero and back (a fleet sized for the peak would bill until
    # the first scale-in).
    first = [msgspec.structs.replace(v, InitialInstanceCount=1) for v in config.ProductionVariants]
    async_config = payloads.async_endpoint_config(
        msgspec.structs.replace(config, ProductionVariants=first), name, per_instance
    )
    outcome = decision.scaling_rule.then
    cooldowns = (outcome.scale_in_cooldown_s, max(outcome.scale_out_cooldown_s, math.ceil(parts.hosting.startup_s)))
    backlog = limits.asynchronous.backlog_target_per_instance
    register, policies, alarm = payloads.async_scaling(name, decision.max_capacity, backlog, cooldowns)
    rule = decision.hosting_rule
    scaling = msgspec.structs.replace(
        parts.scaling,
        rule_id=rule.id if rule else parts.scaling.rule_id,
        reason="Asynchronous inference scales on its queue: target tracking on ApproximateBacklogSizePerInstance "
        "(a customised metric, AWS/SageMaker, EndpointName) from MinCapacity 0, and a step policy on the "
        "HasBacklogWithoutCapacity alarm that starts the first instance (async-inference-autoscale.html).",
        method="target_tracking",
        target_value=backlog,
        formula=f"TargetValue = {fmt(backlog)} queued requests per instance (ApproximateBacklogSizePerInstance); "
        "MinCapacity 0; HasBacklogWithoutCapacity starts the first instance",
        aws=AwsScaling(
            register_scalable_target=register, scaling_policies=policies, scheduled_actions=[], alarms=[alarm]
        ),
    )
    hosting = msgspec.structs.replace(
        parts.hosting,
        reason=f"Asynchronous: requests queue in S3, {per_instance} run at once per instance, the fleet scales "
        "to zero.",
        aws=HostingAws(create_endpoint_config=async_config),
        steps=[f"MaxConcurrentInvocationsPerInstance = ceil({fmt(rate)} rps x {fmt(work)} s) = {per_instance}"],
    )
    capacity = msgspec.structs.replace(parts.capacity, min_instances=0)
    availability = msgspec.structs.replace(parts.availability, mode_note=_drain_note(profile, decision, parts))
    cost = asynchronous_cost(profile, decision, parts.cost)
    return Parts(hosting, capacity, scaling, availability, parts.monitoring, cost)


def _drain_note(profile: WorkloadProfile, decision: Decision, parts: Parts) -> str:
    assert parts.capacity is not None
    per_az, rate, peak = parts.capacity.per_az, decision.per_instance_rps, profile.traffic.rps_at_peak
    left = decision.instances - per_az[0]
    backlog = peak * per_az[0] / decision.instances * parts.hosting.startup_s
    spare = decision.instances * rate - peak
    drain = backlog / spare if spare > 0 else None
    return (
        f"A queue absorbs an AZ loss as delay, not errors: losing the largest AZ ({per_az[0]} of {decision.instances} "
        f"at the peak) leaves {left}; until replacements serve (warm-up {fmt(parts.hosting.startup_s)} s) about "
        f"{fmt(round(backlog))} requests wait, drained "
        + (
            f"in about {fmt(round(drain))} s by the spare capacity once the fleet is whole."
            if drain
            else "as the load falls."
        )
    )


def _batch(
    profile: WorkloadProfile, decision: Decision, limits: HostingLimits, parts: Parts, warnings: list[Warning]
) -> Parts:
    w, t = profile.workload, profile.traffic
    bt = limits.batch_transform
    config = parts.hosting.aws.create_endpoint_config
    name = config.EndpointConfigName.removesuffix("-config") if config else "my-endpoint"
    rate = decision.per_instance_rps
    work = processing_s(profile) or 1 / rate
    sizes = [k for k in (w.payload_kib, w.response_kib) if k is not None]
    payload_mb = min(max(math.ceil(max(sizes) / 1024), 1), bt.max_payload_mb) if sizes else 6
    transforms = min(max(math.ceil(rate * work), 1), bt.max_payload_mb // payload_mb)
    timeout = min(max(math.ceil(work * 3), 60), bt.max_invocation_s)
    n = batch_instances(decision)
    job = payloads.transform_job(name, decision.instance.type, n, (transforms, payload_mb), timeout)
    if not sizes:
        warnings.append(
            Warning(
                code="batch_payload_assumed",
                message="No payload sizes given: MaxPayloadInMB is AWS's default, 6 MB per mini-batch.",
            )
        )
    mean = t.mean_rps if t.mean_rps is not None else t.rps_at_peak
    cost, job_hours = batch_cost(profile, decision, parts.cost)
    if t.mean_rps is None:
        warnings.append(
            Warning(
                code="batch_volume_assumed",
                message="No traffic.mean_rps: the monthly volume is "
                "taken as the peak rate all month, so the job-hour cost is an upper bound.",
            )
        )
    hosting = msgspec.structs.replace(
        parts.hosting,
        reason=f"Batch transform: {n} x {decision.instance.type} per run, no endpoint.",
        aws=HostingAws(create_transform_job=job),
        steps=[
            f"MaxPayloadInMB = ceil(largest payload / 1024) within 1..{bt.max_payload_mb}: {payload_mb}",
            f"MaxConcurrentTransforms = ceil({fmt(rate)} rps x {fmt(work)} s), at most {bt.max_payload_mb} / "
            f"{payload_mb}: {transforms}",
            f"instances = ceil({fmt(t.peak_rps)} rps / ({fmt(rate)} rps x {fmt(decision.utilization)})) = {n}, "
            "without an endpoint's AZ spread and floor",
            f"job hours a month = {fmt(mean)} records/s x {SECONDS_PER_MONTH} s / ({n} x "
            f"{fmt(rate)} rps x 3600) = {fmt(round(job_hours, 2))}",
        ],
    )
    assert parts.capacity is not None
    capacity = msgspec.structs.replace(
        parts.capacity,
        instances=n,
        min_instances=0,
        max_instances=n,
        per_az=[n],
        utilization_at_peak=round(t.rps_at_peak / (n * rate), 4),
        utilization_at_peak_after_az_loss=None,
    )
    availability = msgspec.structs.replace(
        parts.availability,
        multi_az=False,
        az_count=1,
        survives_az_loss=False,
        mode_note="A transform job has no endpoint to keep up: a failed run is retried (InvocationsMaxRetries) or "
        f"rerun, so the availability rule's AZ plan ({parts.availability.rule_id}) does not apply.",
    )
    return Parts(hosting, capacity, None, availability, msgspec.structs.replace(parts.monitoring, alarms=[]), cost)


def rejections(
    profile: WorkloadProfile, decision: Decision, limits: HostingLimits, real_time_usd: float
) -> list[HostingRejection]:
    """Why each other mode was not chosen, with its expected monthly cost where it could serve."""
    mode, sla = decision.hosting_mode, profile.sla
    out: list[HostingRejection] = []
    if mode != "real_time":
        out.append(HostingRejection(mode="real_time", reason=_real_time_reason(decision, real_time_usd)))
    if mode != "serverless":
        out.append(HostingRejection(mode="serverless", reason=_serverless_reason(profile, decision, limits)))
    if mode != "asynchronous":
        why = {
            "sync": "the caller waits for the answer (sla.delivery sync); asynchronous inference answers through S3",
            "batch": "the input is a dataset in S3 (sla.delivery batch): a transform job runs only for its hours",
        }.get(
            sla.delivery,
            "requests take under 1 s and fit InvokeEndpoint's limits: the queue and the S3 round "
            "trip would add latency for no saving",
        )
        out.append(HostingRejection(mode="asynchronous", reason=why))
    if mode != "inference_components":
        out.append(HostingRejection(mode="inference_components", reason=component_rejection(profile, decision, limits)))
    if mode != "batch_transform":
        out.append(
            HostingRejection(
                mode="batch_transform",
                reason=f"requests arrive one by one (sla.delivery {sla.delivery}); batch transform reads whole "
                "datasets from S3",
            )
        )
    return out


def _real_time_reason(decision: Decision, usd: float) -> str:
    fleet = f"{decision.instances} x {decision.instance.type}"
    if decision.hosting_mode == "batch_transform":
        return (
            f"nothing waits for an answer (sla.delivery batch): an endpoint of {fleet} would bill every idle hour, "
            f"about {fmt(usd)} USD a month expected"
        )
    return (
        f"a real-time fleet ({fleet} at the peak, at least {decision.min_capacity}) bills around the clock whatever "
        f"the traffic: about {fmt(usd)} USD a month expected"
    )


def _serverless_reason(profile: WorkloadProfile, decision: Decision, limits: HostingLimits) -> str:
    if profile.sla.delivery == "batch":
        return "the input is a dataset in S3 (sla.delivery batch), not requests"
    plan: ServerlessPlan | str = plan_serverless(
        profile, limits.serverless, decision.utilization, provisioned=not profile.sla.cold_start_ok
    )
    if isinstance(plan, str):
        return plan
    usd = serverless_cost(profile, plan, limits.serverless).usd_per_month_expected
    if plan.provisioned is not None:
        return (
            f"cold starts are not acceptable (sla.cold_start_ok false): serverless with ProvisionedConcurrency "
            f"{plan.provisioned} ({plan.memory_mb} MB) would cost about {fmt(usd)} USD a month expected "
            "(illustrative serverless prices)"
        )
    return (
        f"more than one request in flight on average: serverless ({plan.memory_mb} MB) would cost about {fmt(usd)} "
        "USD a month expected (illustrative prices) where instances are kept busy"
    )
