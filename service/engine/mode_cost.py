"""The expected cost of a decision in each hosting mode, and the cheapest mode other than the chosen one.

- real-time: ``cost.cost_estimate`` (instance-hours of the fleet the payloads run, whatever the traffic);
- serverless: ``serverless.serverless_cost`` (GB-seconds and GB processed, provisioned concurrency held);
- asynchronous: the instance-hours that run: the mean load's busy instances, none while the queue is empty
  (scale-in cooldowns add a little, so the figure errs low by minutes per burst);
- inference components: the model's reserved share of shared instances (``inference_components.component_cost``);
- batch transform: the job hours a month's records need on the planned instances.

A mode is compared only where it could serve the profile: its limits hold, and it delivers answers the way the
profile asks (a waiting caller is served by real-time or serverless; one that polls also by asynchronous
inference; a dataset by batch transform, asynchronous inference or an endpoint).
"""

from __future__ import annotations

import msgspec

from service.contract import CostEstimate, WorkloadProfile
from service.engine.capacity import fmt
from service.engine.core import Decision, processing_s
from service.engine.cost import priced
from service.engine.inference_components import component_cost, plan_copies, unsuitable
from service.engine.serverless import SECONDS_PER_MONTH, plan_serverless, serverless_cost
from service.rulebook.hosting_models import HostingLimits

__all__ = ["asynchronous_cost", "batch_cost", "batch_instances", "best_other_mode", "mode_cost"]

_SERVES = {
    "sync": ("real_time", "serverless", "inference_components"),
    "async_ok": ("real_time", "serverless", "asynchronous", "inference_components"),
    "batch": ("batch_transform", "asynchronous", "real_time"),
}


def _mean(profile: WorkloadProfile) -> float:
    t = profile.traffic
    return t.mean_rps if t.mean_rps is not None else t.rps_at_peak


def _with(base: CostEstimate, expected: float, how: str, mean_rps: float) -> CostEstimate:
    """``base`` (the real-time fleet's cost) with another expected figure and a minimum of 0 (nothing runs)."""
    expected = min(max(expected, 0.0), priced(base.usd_per_month_peak))
    return msgspec.structs.replace(
        base,
        usd_per_month_expected=round(expected, 2),
        usd_per_month_min=0.0,
        usd_per_million_requests=round(expected / (mean_rps * SECONDS_PER_MONTH) * 1_000_000, 4),
        basis=f"{how}; {base.basis}",
    )


def asynchronous_cost(profile: WorkloadProfile, decision: Decision, real_time: CostEstimate) -> CostEstimate:
    rate, mean = decision.per_instance_rps, _mean(profile)
    busy = min(mean / (rate * decision.utilization), decision.instances)
    how = (
        f"asynchronous: instances run while there is work, {fmt(busy)} on average (mean {fmt(mean)} rps / "
        f"({fmt(rate)} rps x {fmt(decision.utilization)})), none while the queue is empty; scale-in cooldowns add "
        "a little"
    )
    return _with(real_time, busy * 730 * decision.instance.usd_per_hour, how, mean)


def batch_instances(decision: Decision) -> int:
    """A job's instances: the base count at the peak rate, ceil(peak_rps / (rate x utilisation)), without the AZ
    spread and floors an endpoint needs (a job has no endpoint to keep up through an AZ loss)."""
    return decision.peak.base


def batch_cost(profile: WorkloadProfile, decision: Decision, real_time: CostEstimate) -> tuple[CostEstimate, float]:
    """The job-hour cost, and the job hours a month (the instances run at their full rate)."""
    mean, n = _mean(profile), batch_instances(decision)
    job_hours = mean * SECONDS_PER_MONTH / (n * decision.per_instance_rps * 3600)
    usd = job_hours * n * decision.instance.usd_per_hour
    return _with(real_time, usd, "batch transform: the job's hours only", mean), job_hours


def mode_cost(
    mode: str, profile: WorkloadProfile, decision: Decision, limits: HostingLimits, real_time: CostEstimate
) -> CostEstimate | str:
    """The expected cost of ``decision``'s fleet (or serverless) in ``mode``, or why the mode cannot serve."""
    work = processing_s(profile)
    w = profile.workload
    largest = max(w.payload_kib or 0, w.response_kib or 0)
    if mode not in _SERVES[profile.sla.delivery]:
        return f"does not deliver answers as sla.delivery {profile.sla.delivery} asks"
    if mode == "real_time":
        if (work or 0) > limits.real_time.max_processing_s or largest > limits.real_time.max_payload_kib:
            return "beyond InvokeEndpoint's 60 s or 6 MiB"
        return real_time
    if mode == "serverless":
        plan = plan_serverless(
            profile, limits.serverless, decision.utilization, provisioned=not profile.sla.cold_start_ok
        )
        return plan if isinstance(plan, str) else serverless_cost(profile, plan, limits.serverless)
    if mode == "asynchronous":
        if (work or 0) > limits.asynchronous.max_processing_s or largest > limits.asynchronous.max_payload_kib:
            return "beyond asynchronous inference's hour or 1 GB"
        return asynchronous_cost(profile, decision, real_time)
    if mode == "batch_transform":
        return batch_cost(profile, decision, real_time)[0]
    why = unsuitable(profile, limits)
    if why is not None or limits.inference_components is None:
        return why or "no inference_components limits"
    return component_cost(profile, decision, plan_copies(profile, decision, limits.inference_components), real_time)


def best_other_mode(
    profile: WorkloadProfile, decision: Decision, limits: HostingLimits, real_time: CostEstimate
) -> tuple[str, CostEstimate] | None:
    """The cheapest mode, by expected monthly cost, other than the decision's that could serve the profile."""
    priced = []
    for mode in ("real_time", "serverless", "asynchronous", "inference_components", "batch_transform"):
        if mode == decision.hosting_mode:
            continue
        cost = mode_cost(mode, profile, decision, limits, real_time)
        if not isinstance(cost, str):
            priced.append((cost.usd_per_month_expected, mode, cost))
    if not priced:
        return None
    _, mode, cost = min(priced, key=lambda p: (p[0], p[1]))
    return mode, cost
