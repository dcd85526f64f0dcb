"""The AZ diagram (instances per AZ, and what one AZ down leaves) and the cost chart (the plan against each what-if)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.report.svg import Attr, Chart, Frame, Mark, num

__all__ = ["az_chart", "cost_chart"]

WIDTH = 640
_BAR_ROW = 26
_LABEL_W = 190
_CLIP = 3.0


def az_chart(capacity: Mapping[str, Any], availability: Mapping[str, Any]) -> Chart | None:
    """Bars per AZ at the peak; beside them the same fleet with its largest AZ gone."""
    per_az = [int(n) for n in capacity.get("per_az") or ()]
    if not per_az:
        return None
    largest = per_az.index(max(per_az))
    survivors = sum(per_az) - per_az[largest]
    frame = Frame(left=56, top=64, width=560, height=190, x_max=1, y_max=max(per_az) * 1.15)
    marks = [*frame.y_ticks(), *frame.axes("Availability Zone", "instances at the peak")]
    marks += _az_group(frame, per_az, None, "all AZs up")
    marks += _az_group(frame, per_az, largest, f"AZ {largest + 1} down: {survivors} left")
    degraded = capacity.get("utilization_at_peak_after_az_loss")
    after = f" at {float(degraded):.0%} of the basis rate" if isinstance(degraded, int | float) else ""
    survives = availability.get("survives_az_loss")
    verdict = (
        "; the plan survives it."
        if survives is True
        else "; the plan does not claim to survive it."
        if survives is False
        else "."
    )
    return Chart(
        key="az",
        title="Instances per Availability Zone",
        summary=f"{' + '.join(map(str, per_az))} = {sum(per_az)} instances over {len(per_az)} AZs at the peak. "
        f"Losing the largest AZ ({per_az[largest]}) leaves {survivors}{after}{verdict}",
        width=WIDTH,
        height=310,
        marks=marks,
        data={"per-az": ",".join(map(str, per_az)), "survivors": survivors, "instances": sum(per_az)},
        legend=[("az", "instances in service"), ("az-down", "the AZ lost")],
    )


def _az_group(frame: Frame, per_az: list[int], lost: int | None, title: str) -> list[Mark]:
    """One group of bars: every AZ, with ``lost`` (if any) down."""
    slot = frame.width / (2 * len(per_az) + 1)
    base = frame.left + (0 if lost is None else (len(per_az) + 1) * slot)
    marks = [text(base + len(per_az) * slot / 2, 18, title, "group-label", anchor="middle")]
    for i, count in enumerate(per_az):
        kept = 0 if i == lost else count
        x, y = base + i * slot + slot * 0.15, frame.y(kept)
        data = {"az": i + 1, "instances": kept, "down": int(i == lost)}
        size = {"x": num(x), "y": num(y), "width": num(slot * 0.7), "height": num(frame.bottom - y)}
        marks.append(Mark("rect", {"class": "az-down" if i == lost else "az", **size}, data))
        marks.append(
            text(
                x + slot * 0.35,
                min(y, frame.bottom) - 4,
                "down" if i == lost else str(kept),
                "bar-label",
                anchor="middle",
            )
        )
        marks.append(text(x + slot * 0.35, frame.bottom + 16, f"AZ {i + 1}", "tick", anchor="middle"))
    return marks


def cost_chart(cost: Mapping[str, Any], instance_type: str, what_if: Sequence[Mapping[str, Any]]) -> Chart | None:
    """Horizontal bars: the plan's expected month (with its min-peak range) and each what-if's."""
    expected = cost.get("usd_per_month_expected", cost.get("usd_per_month"))
    if not isinstance(expected, int | float):
        return None
    rows: list[tuple[str, float, str]] = [("this plan", float(expected), instance_type)]
    rows += [
        (
            str(w.get("change")),
            float(w.get("usd_per_month_expected", 0.0)),
            f"{w.get('instances')} x {w.get('instance_type')}",
        )
        for w in what_if
    ]
    low, peak = (
        _number(cost.get("usd_per_month_min")),
        _number(cost.get("usd_per_month_peak", cost.get("usd_per_month"))),
    )
    # The axis ends at the largest figure, or at _CLIP times the plan's peak month when an alternative costs far more
    # (a bar past it is cut at the edge, its label giving the figure), so the plan's own bars stay readable.
    reference = max(float(expected), peak or 0.0)
    top = min(max([r[1] for r in rows] + [reference]), _CLIP * reference) * 1.12 or 1.0
    frame = Frame(left=_LABEL_W, top=24, width=WIDTH - _LABEL_W - 30, height=_BAR_ROW * len(rows), x_max=top, y_max=1)
    marks: list[Mark] = []
    for i, row in enumerate(rows):
        marks += _cost_row(frame, i, row, float(expected))
    if low is not None and peak is not None:
        mid = num(frame.top + _BAR_ROW - 2)  # under the plan's bar: its min-peak span
        ends = {"x1": num(frame.x(low)), "y1": mid, "x2": num(frame.x(peak)), "y2": mid}
        marks.append(Mark("line", {"class": "range", **ends}, {"min": low, "peak": peak}))
    marks.append(
        Mark(
            "line",
            {
                "class": "axis",
                "x1": num(frame.left),
                "y1": num(frame.top),
                "x2": num(frame.left),
                "y2": num(frame.bottom),
            },
        )
    )
    marks.append(text(frame.left, frame.bottom + 22, "expected USD per month", "axis-label"))
    span = f" (min {low:,.2f}, peak {peak:,.2f})" if low is not None and peak is not None else ""
    others = f"; {len(what_if)} what-if alternatives" if what_if else "; no what-if alternatives were computed"
    return Chart(
        key="cost",
        title="Expected monthly cost: the plan against each what-if",
        summary=f"This plan: {float(expected):,.2f} USD a month expected{span}{others}"
        + "".join(f"; {change}: {usd:,.2f}" for change, usd, _ in rows[1:])
        + ".",
        width=WIDTH,
        height=60 + _BAR_ROW * len(rows),
        marks=marks,
        data={"usd-per-month-expected": float(expected)},
        legend=[
            ("plan", "this plan"),
            ("range", "min to peak month of this plan"),
            ("cheaper", "cheaper what-if"),
            ("same", "what-if at the same cost"),
            ("dearer", "dearer what-if"),
        ],
    )


def _cost_row(frame: Frame, i: int, row: tuple[str, float, str], expected: float) -> list[Mark]:
    change, usd, what = row
    y = frame.top + i * _BAR_ROW
    css = (
        "plan"
        if i == 0
        else "same"
        if round(usd, 2) == round(expected, 2)
        else "cheaper"
        if usd < expected
        else "dearer"
    )
    cut = usd > frame.x_max
    label = f"{usd:,.0f} USD ({what}){', bar cut' if cut else ''}"
    end = frame.x(min(usd, frame.x_max))
    data: dict[str, Attr] = {"change": change, "usd-per-month": usd, "delta": round(usd - expected, 2)}
    bar: dict[str, Attr] = {
        "x": num(frame.left),
        "y": num(y + 4),
        "width": num(end - frame.left),
        "height": _BAR_ROW - 8,
    }
    return [
        text(_LABEL_W - 6, y + _BAR_ROW / 2, change, "row-label", anchor="end", middle=True),
        Mark("rect", {"class": css, **bar}, data),
        # A long bar carries its label inside (white on the bar's dark fill), so the label never leaves the chart.
        text(end - 4, y + _BAR_ROW / 2, label, "bar-label inside", anchor="end", middle=True)
        if end > frame.left + frame.width * 0.55
        else text(end + 4, y + _BAR_ROW / 2, label, "bar-label", middle=True),
    ]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def text(x: float, y: float, words: str, css: str, *, anchor: str = "start", middle: bool = False) -> Mark:
    """A text mark at (x, y)."""
    attrs: dict[str, str | int | float] = {"class": css, "x": num(x), "y": num(y), "text-anchor": anchor}
    if middle:
        attrs["dominant-baseline"] = "middle"
    return Mark("text", attrs, text=words)
