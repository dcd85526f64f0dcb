"""The week the cost is computed for: the load as the cost model takes it, and the fleet the plan runs against it.

Not data: the profile states a peak, perhaps a mean and known windows; ``service.engine.cost`` turns them into
instance-hours, and this module lays the same model out over one week (Sunday 00:00 UTC first) so a chart can show
it. Three cases, as the cost model has them:

- scheduled windows whose start and end crons both repeat weekly: each window's scheduled capacity for its hours,
  the minimum fleet outside them;
- otherwise, with ``mean_rps``: the peak fleet for a share mean/peak of each day (drawn as one block around
  midday), the minimum fleet for the rest;
- without ``mean_rps``: the peak fleet all week.

Fleet-hours over the week x weeks per month x the price per instance-hour is the expected monthly cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.engine.cost import HOURS_PER_MONTH
from service.engine.cron import MINUTES_PER_WEEK, week_minutes

__all__ = ["HOURS_PER_WEEK", "WEEKS_PER_MONTH", "Segment", "WeekModel", "day_of", "week_model"]

HOURS_PER_WEEK = 168
WEEKS_PER_MONTH = HOURS_PER_MONTH / HOURS_PER_WEEK


@dataclass(frozen=True, slots=True)
class Segment:
    """From ``start_h`` to ``end_h`` (hours since Sunday 00:00 UTC) the modelled load and the fleet serving it."""

    start_h: float
    end_h: float
    load_rps: float
    fleet: int


@dataclass(frozen=True, slots=True)
class WeekModel:
    segments: tuple[Segment, ...]
    how: str  # which case of the cost model, in words
    price_per_hour: float | None  # one instance-hour; None when the decision does not say

    @property
    def fleet_hours(self) -> float:
        """Instance-hours in the week."""
        return sum((s.end_h - s.start_h) * s.fleet for s in self.segments)

    @property
    def usd_per_month(self) -> float | None:
        if self.price_per_hour is None:
            return None
        return self.fleet_hours * WEEKS_PER_MONTH * self.price_per_hour


def week_model(profile: Mapping[str, Any], recommendation: Mapping[str, Any]) -> WeekModel | None:
    """The modelled week of a stored decision, or None when it lacks the figures (no capacity block)."""
    capacity = recommendation.get("capacity") or {}
    traffic = profile.get("traffic") or {}
    peak_fleet, min_fleet = capacity.get("instances"), capacity.get("min_instances")
    peak_rps = traffic.get("peak_rps")
    if not isinstance(peak_fleet, int) or not isinstance(peak_rps, int | float):
        return None
    min_fleet = min_fleet if isinstance(min_fleet, int) else peak_fleet
    price = _price_per_hour(recommendation)
    mean = traffic.get("mean_rps")
    if (recommendation.get("scaling") or {}).get("method") == "scheduled":
        scheduled = _scheduled(traffic, recommendation, min_fleet)
        if scheduled is not None:
            return WeekModel(scheduled, "scheduled windows at their capacity, the minimum fleet outside them", price)
    if mean is None:
        segment = Segment(0, HOURS_PER_WEEK, float(peak_rps), peak_fleet)
        return WeekModel((segment,), "the peak fleet all week (no mean_rps given)", price)
    share = min(1.0, float(mean) / float(peak_rps))
    return WeekModel(_daily_peaks(float(peak_rps), share, peak_fleet, min_fleet), _share_words(share), price)


def _share_words(share: float) -> str:
    return (
        f"the peak for a share mean/peak = {share:.4g} of each day (the largest share the mean allows), "
        "the minimum fleet for the rest"
    )


def _price_per_hour(recommendation: Mapping[str, Any]) -> float | None:
    """One instance-hour: the peak fleet's hourly price over its size."""
    per_hour = (recommendation.get("cost") or {}).get("usd_per_hour")
    instances = (recommendation.get("capacity") or {}).get("instances")
    if not isinstance(per_hour, int | float) or not isinstance(instances, int) or instances <= 0:
        return None
    return float(per_hour) / instances


def _daily_peaks(peak_rps: float, share: float, peak_fleet: int, min_fleet: int) -> tuple[Segment, ...]:
    """Each day: the peak for ``share`` of it, centred on 12:00, and no load around it (the mean is then met)."""
    half = share * 12
    segments: list[Segment] = []
    for day in range(7):
        noon = day * 24 + 12.0
        parts = [(day * 24.0, noon - half, 0.0, min_fleet), (noon - half, noon + half, peak_rps, peak_fleet)]
        parts.append((noon + half, day * 24.0 + 24, 0.0, min_fleet))
        segments.extend(Segment(a, b, load, fleet) for a, b, load, fleet in parts if b > a)
    return tuple(segments)


def _scheduled(
    traffic: Mapping[str, Any], recommendation: Mapping[str, Any], min_fleet: int
) -> tuple[Segment, ...] | None:
    """Per minute of the week: the minimum fleet plus each open window's capacity above it (as the cost adds them)."""
    windows: Sequence[Mapping[str, Any]] = traffic.get("peak_windows") or ()
    capacities = _window_capacities(recommendation, len(windows))
    if not windows or capacities is None:
        return None
    outside = traffic.get("mean_rps")
    fleet = [min_fleet] * MINUTES_PER_WEEK
    load: list[float] = [float(outside) if outside is not None else 0.0] * MINUTES_PER_WEEK
    for window, capacity in zip(windows, capacities, strict=True):
        is_open = _open_minutes(window.get("cron"), window.get("end_cron"))
        if is_open is None:
            return None
        for minute in is_open:
            fleet[minute] += capacity - min_fleet
            load[minute] = max(load[minute], float(window.get("rps", 0.0)))
    return _collapse(fleet, load)


def _window_capacities(recommendation: Mapping[str, Any], count: int) -> list[int] | None:
    """The MinCapacity each window's start action sets, in the order of the profile's windows."""
    actions = ((recommendation.get("scaling") or {}).get("aws") or {}).get("scheduled_actions") or []
    starts = [a for a in actions if str(a.get("ScheduledActionName", "")).endswith("-start")]
    if len(starts) != count:
        return None
    capacities = [(a.get("ScalableTargetAction") or {}).get("MinCapacity") for a in starts]
    return [c for c in capacities if isinstance(c, int)] if all(isinstance(c, int) for c in capacities) else None


def _open_minutes(start: object, end: object) -> list[int] | None:
    """The minutes of the week the window is open: from each firing of ``start`` to the next of ``end``."""
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    opens, closes = week_minutes(start), week_minutes(end)
    if not opens or not closes or opens & closes:
        return None
    events = sorted([(t, True) for t in opens] + [(t, False) for t in closes])
    is_open = events[-1][1]  # the state carried over from the end of the previous week
    minutes: list[int] = []
    since = 0
    for moment, opening in events:
        if is_open:
            minutes.extend(range(since, moment))
        since, is_open = moment, opening
    if is_open:
        minutes.extend(range(since, MINUTES_PER_WEEK))
    return minutes


def _collapse(fleet: list[int], load: list[float]) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    start = 0
    for minute in range(1, MINUTES_PER_WEEK + 1):
        if minute == MINUTES_PER_WEEK or (fleet[minute], load[minute]) != (fleet[start], load[start]):
            segments.append(Segment(start / 60, minute / 60, load[start], fleet[start]))
            start = minute
    return tuple(segments)


def day_of(hour: float) -> str:
    """The weekday an hour of the model week falls on."""
    return ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")[int(hour // 24) % 7]
