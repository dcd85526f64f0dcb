"""Serverless inference: memory size, concurrency, provisioned concurrency and the cost of each request.

The limits and prices are the hosting table's (``rules/tables/hosting.yaml`` ``limits.serverless``, with their
source); the arithmetic is here:

- ``MemorySizeInMB``: the smallest allowed size holding the model x ``memory_headroom``;
- ``MaxConcurrency``: Little's law, ceil(peak_rps x processing_s / target_utilization), at least
  ``min_max_concurrency`` (requests above it are throttled), at most ``max_concurrency``;
- ``ProvisionedConcurrency`` (when cold starts are not acceptable): the requests in flight at the mean load the
  same way, at least 1 and at most MaxConcurrency;
- cost: GB-seconds of compute (memory x processing_s per request) and GB of data processed (request + response),
  plus provisioned concurrency held all month (memory x concurrency x seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.contract import CostEstimate, WorkloadProfile
from service.engine.capacity import fmt
from service.engine.core import processing_s
from service.rulebook.hosting_models import ServerlessLimits

__all__ = ["ServerlessPlan", "plan_serverless", "serverless_cost"]

SECONDS_PER_MONTH = 730 * 3600  # AWS pricing convention: 730 hours
KIB_PER_GB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerlessPlan:
    memory_mb: int
    max_concurrency: int
    provisioned: int | None
    processing_s: float
    steps: tuple[str, ...]


def plan_serverless(
    profile: WorkloadProfile, limits: ServerlessLimits, utilization: float, *, provisioned: bool
) -> ServerlessPlan | str:
    """The serverless variant for ``profile``, or why serverless cannot serve it."""
    w, t = profile.workload, profile.traffic
    work = processing_s(profile)
    if w.bound == "gpu":
        return "serverless endpoints have no GPUs (serverless-endpoints.html)"
    if w.model_memory_gib is None:
        return "workload.model_memory_gib is not given, so MemorySizeInMB cannot be chosen"
    if work is None:
        return "workload.processing_s is not given (nor a load-tested p99), so MaxConcurrency cannot be sized"
    if work > limits.max_processing_s:
        return f"processing {fmt(work)} s is above the {fmt(limits.max_processing_s)} s serverless invocation timeout"
    sizes = [k for k in (w.payload_kib, w.response_kib) if k is not None]
    if sizes and max(sizes) > limits.max_payload_kib:
        return f"a payload of {fmt(max(sizes))} KiB is above the {fmt(limits.max_payload_kib)} KiB serverless limit"
    need_mb = w.model_memory_gib * 1024 * limits.memory_headroom
    memory = next((m for m in sorted(limits.memory_sizes_mb) if m >= need_mb), None)
    if memory is None:
        return (
            f"the model needs {fmt(need_mb)} MB ({fmt(w.model_memory_gib)} GiB x {fmt(limits.memory_headroom)}), "
            f"above the largest MemorySizeInMB {max(limits.memory_sizes_mb)}"
        )
    in_flight = t.rps_at_peak * work
    wanted = math.ceil(in_flight / utilization)
    if in_flight > limits.max_concurrency:
        return f"{fmt(in_flight)} requests in flight at the peak exceed MaxConcurrency's {limits.max_concurrency}"
    max_concurrency = min(max(wanted, limits.min_max_concurrency), limits.max_concurrency)
    steps = [
        f"MemorySizeInMB = smallest of {limits.memory_sizes_mb} >= {fmt(w.model_memory_gib)} GiB x 1024 x "
        f"{fmt(limits.memory_headroom)} = {fmt(need_mb)} MB: {memory}",
        f"MaxConcurrency = ceil(peak {fmt(t.peak_rps)} rps x {fmt(work)} s / {fmt(utilization)}) = {wanted}, "
        f"within {limits.min_max_concurrency}..{limits.max_concurrency} (requests above it are throttled): "
        f"{max_concurrency}",
    ]
    pc = None
    if provisioned:
        mean = t.mean_rps if t.mean_rps is not None else t.rps_at_peak
        pc = min(max(math.ceil(mean * work / utilization), 1), max_concurrency)
        steps.append(
            f"ProvisionedConcurrency = ceil({'mean' if t.mean_rps is not None else 'peak'} {fmt(mean)} rps x "
            f"{fmt(work)} s / {fmt(utilization)}), within 1..MaxConcurrency: {pc}"
        )
    return ServerlessPlan(memory, max_concurrency, pc, work, tuple(steps))


def serverless_cost(profile: WorkloadProfile, plan: ServerlessPlan, limits: ServerlessLimits) -> CostEstimate:
    """Expected (mean load), min (nothing invoked) and peak (the peak all month) monthly cost."""
    t, w = profile.traffic, profile.workload
    gb = plan.memory_mb / 1024
    data_gb = ((w.payload_kib or 0.0) + (w.response_kib or 0.0)) / KIB_PER_GB
    per_request = gb * plan.processing_s * limits.usd_per_gb_second + data_gb * limits.usd_per_gb_processed
    held = (plan.provisioned or 0) * gb * SECONDS_PER_MONTH * limits.usd_per_gb_second_provisioned
    mean = t.mean_rps if t.mean_rps is not None else t.rps_at_peak
    expected = mean * SECONDS_PER_MONTH * per_request + held
    peak = t.rps_at_peak * SECONDS_PER_MONTH * per_request + held
    data_note = "" if w.payload_kib or w.response_kib else "; data processed not priced (no payload sizes given)"
    return CostEstimate(
        usd_per_hour=round(peak / 730, 4),
        usd_per_month=round(peak, 2),
        usd_per_month_expected=round(expected, 2),
        usd_per_month_min=round(held, 2),
        usd_per_month_peak=round(peak, 2),
        usd_per_million_requests=round(per_request * 1_000_000 + held / (mean * SECONDS_PER_MONTH) * 1_000_000, 4),
        price_as_of="illustrative",
        region="us-east-1",
        basis=f"serverless: {limits.price_source.strip()} Expected: the {'mean' if t.mean_rps else 'peak'} load "
        f"({fmt(mean)} rps) all month; min: nothing invoked (only provisioned concurrency bills){data_note}",
        formula=f"per request {fmt(gb)} GB x {fmt(plan.processing_s)} s x {limits.usd_per_gb_second} USD/GB-s + "
        f"{fmt(round(data_gb, 6))} GB x {limits.usd_per_gb_processed} USD/GB; provisioned "
        f"{plan.provisioned or 0} x {fmt(gb)} GB x {SECONDS_PER_MONTH} s x {limits.usd_per_gb_second_provisioned} "
        "USD/GB-s",
    )
