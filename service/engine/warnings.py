"""Warnings the engine raises from its own arithmetic: what it had to assume, and where the plan is thin."""

from __future__ import annotations

from service.contract import Capacity, Warning, WorkloadProfile
from service.engine.capacity import fmt
from service.engine.core import Decision

__all__ = ["BURST_PEAK_TO_MEAN", "NEAR_IDLE_UTILIZATION", "engine_warnings"]

NEAR_IDLE_UTILIZATION = 0.1
BURST_PEAK_TO_MEAN = 5


def engine_warnings(
    profile: WorkloadProfile, decision: Decision, capacity: Capacity, startup_s: float
) -> list[Warning]:
    out = _basis_warnings(profile, decision)
    avail_rule = decision.availability_rule
    if profile.az_count and not avail_rule.then.multi_az:
        out.append(
            Warning(
                code="az_count_ignored",
                rule_id=avail_rule.id,
                message=f"az_count {profile.az_count} was given, but rule '{avail_rule.id}' "
                "plans a single-AZ deployment for this availability objective.",
            )
        )
    if capacity.instances == 1 and profile.sla.availability >= 0.99:
        out.append(
            Warning(
                code="single_instance",
                message="One instance cannot meet an availability objective of 99% or more: SageMaker's SLA covers "
                "only endpoints with 2 or more instances.",
            )
        )
    after = capacity.utilization_at_peak_after_az_loss
    if after is not None and after > 1.0:
        out.append(
            Warning(
                code="az_loss_overload",
                rule_id=avail_rule.id,
                message=f"Losing the largest AZ ({capacity.per_az[0]} instances) leaves the rest at {fmt(after)} of "
                "their tested rate at the peak: latency and errors rise until replacements serve, a warm-up later.",
            )
        )
    if capacity.utilization_at_peak < NEAR_IDLE_UTILIZATION:
        out.append(
            Warning(
                code="near_idle_fleet",
                message=f"At the peak the fleet runs at {fmt(capacity.utilization_at_peak)} of its rate: the "
                "instances are kept for availability, not load; a smaller type, fewer AZs or another hosting mode "
                "may serve it for less.",
            )
        )
    out.extend(_burst_warning(profile, startup_s))
    return out


def _basis_warnings(profile: WorkloadProfile, decision: Decision) -> list[Warning]:
    chosen = decision.selection.chosen
    measured = chosen.measured_on
    if chosen.source == "assumed":
        tested = profile.traffic.tested_instance_type
        where = f"was measured on {tested}, not" if tested else "was not said to be measured on"
        return [
            Warning(
                code="untested_instance_type",
                message=f"traffic.per_instance_rps {fmt(chosen.rps)} {where} {chosen.instance.type}: the counts assume "
                f"it holds there. Load-test {chosen.instance.type} and send the result in load_tests (or as "
                "traffic.tested_instance_type).",
            )
        ]
    if chosen.source == "extrapolated" and measured is not None:
        return [
            Warning(
                code="throughput_extrapolated",
                rule_id=decision.sizing_rule.id,
                message=f"{fmt(chosen.rps)} rps per {chosen.instance.type} is {fmt(measured.rps)} rps measured on "
                f"{measured.instance.type} scaled by the vCPU ratio {fmt(chosen.factor)} (same generation); "
                f"load-test {chosen.instance.type} to confirm.",
            )
        ]
    if measured is not None and measured.at_max_invocations:
        return [
            Warning(
                code="latency_not_p99",
                message=f"The latency of {measured.label} is the model latency at the maximum rate (Inference "
                "Recommender's ModelLatency), not a p99: the SLA check is only as good as that figure.",
            )
        ]
    return []


def _burst_warning(profile: WorkloadProfile, startup_s: float) -> list[Warning]:
    t = profile.traffic
    if t.burstiness != "bursty" or t.mean_rps is None or t.rps_at_peak / t.mean_rps < BURST_PEAK_TO_MEAN:
        return []
    return [
        Warning(
            code="scale_out_slower_than_burst",
            message=f"Peak/mean {fmt(t.rps_at_peak / t.mean_rps)} with bursty traffic: a new instance serves only "
            f"after the alarm (1-2 min of data) and its warm-up ({fmt(startup_s)} s), so bursts shorter than that are "
            "carried by the standing fleet alone; raise the minimum or queue requests (asynchronous inference).",
        )
    ]
