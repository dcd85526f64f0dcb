"""The capacity chart (the modelled week: load against the fleet) and the scaling chart (where the policies settle)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from service.engine.capacity import ceil_div
from service.report.svg import Chart, Frame, Mark, num
from service.report.week import HOURS_PER_WEEK, WEEKS_PER_MONTH, WeekModel, day_of

__all__ = ["Rates", "capacity_chart", "rates", "scaling_chart", "steady_state"]

WIDTH, HEIGHT = 640, 320
_FRAME = {"left": 56.0, "top": 28.0, "width": 560.0, "height": 230.0}


class Rates:
    """The per-instance rates the plan rests on: the basis (full) rate and the target the policy holds."""

    def __init__(self, basis_rps: float, target_rps: float, per_minute: float | None, az_count: int) -> None:
        self.basis_rps, self.target_rps, self.per_minute, self.az_count = basis_rps, target_rps, per_minute, az_count

    def after_az_loss(self, fleet: int) -> int:
        """Instances left when the largest AZ of an even spread goes."""
        return fleet - math.ceil(fleet / self.az_count) if self.az_count > 1 else 0


def rates(profile: Mapping[str, Any], recommendation: Mapping[str, Any]) -> Rates | None:
    capacity = recommendation.get("capacity") or {}
    basis = (capacity.get("throughput_basis") or {}).get("per_instance_rps")
    if basis is None:
        basis = (profile.get("traffic") or {}).get("per_instance_rps")
    if not isinstance(basis, int | float):
        return None
    per_minute = _per_minute(recommendation.get("scaling") or {})
    if per_minute is not None:
        target = per_minute / 60
    else:  # step or scheduled policies without a target: the planned utilisation of the basis rate
        per_minute, target = None, float(basis) * float(profile.get("target_utilization", 0.7))
    az = (recommendation.get("availability") or {}).get("az_count") or len(capacity.get("per_az") or ()) or 1
    return Rates(float(basis), target, per_minute, int(az))


def _per_minute(scaling: Mapping[str, Any]) -> float | None:
    """Invocations per instance per minute the fleet settles at: target tracking's TargetValue, or the threshold of
    the step scale-out alarm on InvocationsPerInstance (the fleet grows until it is no longer crossed)."""
    target = scaling.get("target_value")
    if isinstance(target, int | float) and target > 0:
        return float(target)
    for alarm in (scaling.get("aws") or {}).get("alarms") or ():
        rising = str(alarm.get("ComparisonOperator", "")).startswith("GreaterThan")
        threshold = alarm.get("Threshold")
        if alarm.get("MetricName") == "InvocationsPerInstance" and rising and isinstance(threshold, int | float):
            return float(threshold)
    return None


def steady_state(load_rps: float, rates: Rates, min_fleet: int, max_fleet: int) -> int:
    """n(L) = max(min, ceil(L / target per instance)), capped at max: where the policy settles at load L."""
    if rates.per_minute is not None:
        need = ceil_div(load_rps * 60, rates.per_minute)
    else:
        need = ceil_div(load_rps, rates.target_rps)
    return min(max_fleet, max(min_fleet, need))


def capacity_chart(week: WeekModel, rates: Rates, capacity: Mapping[str, Any]) -> Chart:
    """Load (the model) and the fleet over the week, in requests per second."""
    max_fleet = int(capacity.get("max_instances") or max(s.fleet for s in week.segments))
    min_fleet = int(capacity.get("min_instances") or min(s.fleet for s in week.segments))
    top = max(max_fleet * rates.basis_rps, max(s.load_rps for s in week.segments)) * 1.08
    frame = Frame(**_FRAME, x_max=HOURS_PER_WEEK, y_max=top)
    marks = [*frame.y_ticks(), *frame.axes("hour of the week (UTC, Sunday first)", "requests per second")]
    marks += _day_ticks(frame)
    for fleet, label in ((min_fleet, f"min {min_fleet}"), (max_fleet, f"max {max_fleet}")):
        y = num(frame.y(fleet * rates.basis_rps))
        marks.append(
            Mark(
                "line",
                {"class": "limit", "x1": num(frame.left), "y1": y, "x2": num(frame.x(168)), "y2": y},
                {"instances": fleet, "rps": fleet * rates.basis_rps},
            )
        )
        marks.append(
            Mark(
                "text",
                {"class": "limit-label", "x": num(frame.x(168) - 2), "y": num(float(y) - 4), "text-anchor": "end"},
                text=label,
            )
        )
    for segment in week.segments:
        marks += _segment_marks(frame, segment, rates)
    return Chart(
        key="capacity",
        title="Capacity over a modelled week",
        summary=_capacity_summary(week, rates, min_fleet, max_fleet),
        width=WIDTH,
        height=HEIGHT,
        marks=marks,
        data={
            "price-per-hour": week.price_per_hour if week.price_per_hour is not None else "",
            "fleet-hours-per-week": round(week.fleet_hours, 4),
            "weeks-per-month": WEEKS_PER_MONTH,
            "basis-rps": rates.basis_rps,
            "target-rps": rates.target_rps,
            "min": min_fleet,
            "max": max_fleet,
        },
        legend=[
            ("fleet", "the fleet at the full basis rate"),
            ("target", "the target-utilisation line (where scaling holds it)"),
            ("az-loss", "left after losing the largest AZ"),
            ("load", "load: the model the cost uses, not measured data"),
            ("limit", "min and max capacity"),
        ],
    )


def _segment_marks(frame: Frame, segment: Any, rates: Rates) -> list[Mark]:
    x1, x2 = num(frame.x(segment.start_h)), num(frame.x(segment.end_h))
    data = {
        "start-h": round(segment.start_h, 4),
        "end-h": round(segment.end_h, 4),
        "fleet": segment.fleet,
        "load-rps": segment.load_rps,
    }
    full_y = frame.y(segment.fleet * rates.basis_rps)
    survivors = rates.after_az_loss(segment.fleet)

    def level(css: str, value: float, extra: dict[str, Any]) -> Mark:
        y = num(frame.y(value))
        return Mark("line", {"class": css, "x1": x1, "y1": y, "x2": x2, "y2": y}, extra)

    return [
        Mark(
            "rect",
            {
                "class": "fleet",
                "x": x1,
                "y": num(full_y),
                "width": num(float(x2) - float(x1)),
                "height": num(frame.bottom - full_y),
            },
            data,
        ),
        level("target", segment.fleet * rates.target_rps, {"rps": segment.fleet * rates.target_rps}),
        level("az-loss", survivors * rates.basis_rps, {"instances": survivors, "rps": survivors * rates.basis_rps}),
        level("load", segment.load_rps, {"load-rps": segment.load_rps}),
    ]


def _day_ticks(frame: Frame) -> list[Mark]:
    marks: list[Mark] = []
    for day in range(7):
        x = frame.x(day * 24 + 12)
        marks.append(
            Mark(
                "text",
                {"class": "tick", "x": num(x), "y": num(frame.bottom + 16), "text-anchor": "middle"},
                text=day_of(day * 24),
            )
        )
    return marks


def _capacity_summary(week: WeekModel, rates: Rates, min_fleet: int, max_fleet: int) -> str:
    fleets = sorted({s.fleet for s in week.segments})
    cost = f", {week.usd_per_month:,.2f} USD a month" if week.usd_per_month is not None else ""
    return (
        f"Modelled load over one week ({week.how}; a model of the profile, not measured traffic) against the fleet: "
        f"{', '.join(map(str, fleets))} instances at {rates.basis_rps:g} rps each, held at {rates.target_rps:.4g} rps "
        f"per instance by scaling; min {min_fleet}, max {max_fleet}. {week.fleet_hours:,.1f} instance-hours a "
        f"week{cost}."
    )


def scaling_chart(rates: Rates, capacity: Mapping[str, Any], peak_rps: float) -> Chart:
    """Steady-state instances at each load level from zero to past the peak."""
    min_fleet, max_fleet = int(capacity.get("min_instances") or 1), int(capacity.get("max_instances") or 1)
    top_load = max(peak_rps * 1.25, max_fleet * rates.target_rps * 1.02)
    frame = Frame(**_FRAME, x_max=top_load, y_max=max_fleet * 1.1)
    marks = [*frame.y_ticks(), *frame.axes("load, requests per second", "instances (steady state)")]
    samples = 48
    points: list[tuple[float, int]] = []
    for i in range(samples + 1):
        load = top_load * i / samples
        points.append((load, steady_state(load, rates, min_fleet, max_fleet)))
    path = " ".join(f"{num(frame.x(x))},{num(frame.y(n))}" for x, n in points)
    marks.append(Mark("polyline", {"class": "steps", "points": path, "fill": "none"}))
    for load, n in points:
        marks.append(
            Mark(
                "circle",
                {"class": "level", "cx": num(frame.x(load)), "cy": num(frame.y(n)), "r": 2},
                {"load-rps": round(load, 6), "instances": n},
            )
        )
    peak_n = steady_state(peak_rps, rates, min_fleet, max_fleet)
    marks.append(
        Mark(
            "circle",
            {"class": "peak", "cx": num(frame.x(peak_rps)), "cy": num(frame.y(peak_n)), "r": 5},
            {"load-rps": peak_rps, "instances": peak_n},
        )
    )
    marks.append(
        Mark(
            "text",
            {"class": "peak-label", "x": num(frame.x(peak_rps) + 8), "y": num(frame.y(peak_n) + 14)},
            text=f"peak {peak_rps:g} rps: {peak_n}",
        )
    )
    marks += _load_ticks(frame, top_load)
    rule = (
        f"ceil(load x 60 / {rates.per_minute:g} invocations per instance per minute)"
        if rates.per_minute
        else f"ceil(load / {rates.target_rps:.4g} rps per instance)"
    )
    return Chart(
        key="scaling",
        title="Instances the scaling policy settles at, by load",
        summary=f"Steady-state instance count n = max({min_fleet}, {rule}), at most {max_fleet}; at the peak of "
        f"{peak_rps:g} rps it is {peak_n}.",
        width=WIDTH,
        height=HEIGHT,
        marks=marks,
        data={"min": min_fleet, "max": max_fleet, "target-rps": rates.target_rps, "peak-instances": peak_n},
        legend=[("steps", "steady-state instances"), ("peak", "the profile's peak")],
    )


def _load_ticks(frame: Frame, top_load: float) -> list[Mark]:
    ticks = [top_load * i / 5 for i in range(6)]
    return [
        Mark(
            "text",
            {"class": "tick", "x": num(frame.x(x)), "y": num(frame.bottom + 16), "text-anchor": "middle"},
            text=f"{x:.3g}",
        )
        for x in ticks
    ]
