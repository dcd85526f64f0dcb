"""Figures read off a profile before any rule decides: processing time per request, the peak in instances."""

from __future__ import annotations

from service.contract import WorkloadProfile

__all__ = ["peak_instances", "processing_s"]


def processing_s(profile: WorkloadProfile) -> float | None:
    """Processing time per request: the profile's, else the largest p99 its load tests measured."""
    if profile.workload.processing_s is not None:
        return profile.workload.processing_s
    p99s = [
        t.p99_latency_ms
        for t in profile.load_tests or ()
        if t.p99_latency_ms is not None and t.latency_measure == "p99"
    ]
    return max(p99s) / 1000 if p99s else None


def peak_instances(profile: WorkloadProfile) -> float | None:
    """The peak in instances' worth: at the stated rate, else at the slowest load-tested one (the larger share)."""
    t = profile.traffic
    tested = [x.rps for x in profile.load_tests or ()]
    rates = [t.per_instance_rps] if t.per_instance_rps is not None else tested
    return t.rps_at_peak / min(rates) if rates else None
