"""The cost of the plan that is emitted: the fleet the payloads will run, not the peak around the clock.

Real-time instances bill per instance-hour while in service, whatever the traffic
(https://aws.amazon.com/sagemaker/pricing/). The expected month is modelled from what the profile
says about time:

- scheduled windows (start and end cron both simple) run their scheduled capacity for their hours,
  the minimum fleet the rest of the month;
- otherwise, with ``mean_rps``, load is taken as two levels, the peak for a share mean/peak of the
  time and the minimum fleet's load for the rest (the largest peak share a mean allows, so the
  figure errs high);
- without ``mean_rps``, the peak fleet around the clock (nothing says the load falls).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.contract import CostEstimate, Warning, WorkloadProfile
from service.engine.capacity import fmt
from service.engine.core import Decision
from service.engine.cron import hours_per_week

__all__ = ["HOURS_PER_MONTH", "cost_estimate", "priced"]

HOURS_PER_MONTH = 730  # AWS pricing convention
WEEKS_PER_MONTH = HOURS_PER_MONTH / 168


def priced(usd: float | None) -> float:
    """A cost figure the engine computed: only the answer's last step nulls figures of an unpriced Region."""
    if usd is None:
        raise ValueError("a cost figure is null before the Region's prices were applied")
    return usd


@dataclass(frozen=True, slots=True)
class _Expected:
    instance_hours: float  # per month
    how: str


def cost_estimate(
    profile: WorkloadProfile, decision: Decision, price_as_of: str, region: str, warnings: list[Warning]
) -> CostEstimate:
    price = decision.instance.usd_per_hour
    peak_fleet, min_fleet = decision.instances, decision.min_capacity
    expected = _expected(profile, decision, warnings)
    expected_hours = min(max(expected.instance_hours, min_fleet * HOURS_PER_MONTH), peak_fleet * HOURS_PER_MONTH)
    traffic = profile.traffic
    rps_basis = traffic.mean_rps if traffic.mean_rps is not None else traffic.rps_at_peak
    expected_per_hour = expected_hours * price / HOURS_PER_MONTH
    per_hour = peak_fleet * price
    return CostEstimate(
        usd_per_hour=round(per_hour, 4),
        usd_per_month=round(per_hour * HOURS_PER_MONTH, 2),
        usd_per_month_expected=round(expected_hours * price, 2),
        usd_per_month_min=round(min_fleet * price * HOURS_PER_MONTH, 2),
        usd_per_month_peak=round(per_hour * HOURS_PER_MONTH, 2),
        usd_per_million_requests=round(expected_per_hour / (rps_basis * 3600) * 1_000_000, 4),
        price_as_of=price_as_of,
        region=region,
        basis=f"{decision.instance.type} at the illustrative list price of {price_as_of}; expected fleet: "
        f"{expected.how}; per million requests: the expected fleet at "
        f"{'mean' if traffic.mean_rps is not None else 'peak'} traffic ({fmt(rps_basis)} rps). "
        "usd_per_month (deprecated) is the peak fleet around the clock, = usd_per_month_peak",
        formula=f"expected {fmt(expected_hours)} instance-hours/month x {fmt(price)} USD/h; min {min_fleet} and peak "
        f"{peak_fleet} instances x {HOURS_PER_MONTH} h; per million = expected USD/h / ({fmt(rps_basis)} rps x 3600)"
        " x 1e6",
    )


def _expected(profile: WorkloadProfile, decision: Decision, warnings: list[Warning]) -> _Expected:
    traffic = profile.traffic
    peak_fleet, min_fleet = decision.instances, decision.min_capacity
    if decision.scaling_method == "scheduled" and traffic.peak_windows:
        scheduled = _scheduled_hours(profile, decision, warnings)
        if scheduled is not None:
            return scheduled
    if traffic.mean_rps is None:
        return _Expected(peak_fleet * HOURS_PER_MONTH, f"the peak fleet of {peak_fleet} all month (no mean_rps given)")
    share = traffic.mean_rps / traffic.rps_at_peak
    hours = (min_fleet * (1 - share) + peak_fleet * share) * HOURS_PER_MONTH
    return _Expected(
        hours,
        f"{peak_fleet} instances for a peak share mean/peak = {fmt(share)} of the month, the minimum {min_fleet} "
        "for the rest",
    )


def _scheduled_hours(profile: WorkloadProfile, decision: Decision, warnings: list[Warning]) -> _Expected | None:
    min_fleet = decision.min_capacity
    extra = 0.0
    parts: list[str] = []
    for i, window in enumerate(profile.traffic.peak_windows or ()):
        weekly = hours_per_week(window.cron, window.end_cron) if window.end_cron else None
        if weekly is None:
            warnings.append(
                Warning(
                    code="window_hours_unknown",
                    message=f"traffic.peak_windows[{i}]: how long it lasts cannot be read from its crons, so the "
                    "expected cost uses the mean/peak share instead of the schedule.",
                )
            )
            return None
        hours = weekly * WEEKS_PER_MONTH
        need = decision.target.instances_for(window.rps)
        extra += (need - min_fleet) * hours
        parts.append(f"{need} for {fmt(hours)} h")
    return _Expected(
        min_fleet * HOURS_PER_MONTH + extra,
        f"scheduled windows ({', '.join(parts)} a month), the minimum {min_fleet} outside them",
    )
