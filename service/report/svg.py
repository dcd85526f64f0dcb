"""Chart geometry as data: marks (SVG elements with their attributes) that a template writes out.

Every plotted value travels with its mark as a ``data-*`` attribute (the number it stands for, unrounded by the
drawing), so a reader or a test can take the values back from the page without measuring pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Attr", "Chart", "Frame", "Mark", "nice_ticks", "num"]

Attr = str | int | float


def num(value: float) -> str:
    """A number for an SVG coordinate: two decimals at most, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@dataclass(frozen=True, slots=True)
class Mark:
    """One SVG element: ``tag`` with ``attrs``, the ``data`` it plots (written as ``data-<key>``) and its text."""

    tag: str
    attrs: Mapping[str, Attr]
    data: Mapping[str, Attr] = field(default_factory=dict)
    text: str = ""

    @property
    def data_attrs(self) -> dict[str, Attr]:
        return {f"data-{key}": value for key, value in self.data.items()}


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart: its id, title, a text alternative (``summary``), its size in user units, its marks and the values
    that describe it as a whole (``data-*`` on the ``<svg>``), plus a legend of (css class, words)."""

    key: str
    title: str
    summary: str
    width: int
    height: int
    marks: list[Mark]
    data: dict[str, Attr] = field(default_factory=dict)
    legend: list[tuple[str, str]] = field(default_factory=list)

    @property
    def data_attrs(self) -> dict[str, Attr]:
        return {f"data-{key}": value for key, value in self.data.items()}


@dataclass(frozen=True, slots=True)
class Frame:
    """The plot area inside a chart's margins, mapping data values to user units (y grows upwards)."""

    left: float
    top: float
    width: float
    height: float
    x_max: float
    y_max: float
    x_min: float = 0.0

    def x(self, value: float) -> float:
        return self.left + (value - self.x_min) / (self.x_max - self.x_min) * self.width

    def y(self, value: float) -> float:
        return self.top + self.height - value / self.y_max * self.height

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def axes(self, x_label: str, y_label: str) -> list[Mark]:
        """The two axis lines and their labels."""
        return [
            Mark(
                "line",
                {
                    "class": "axis",
                    "x1": num(self.left),
                    "y1": num(self.bottom),
                    "x2": num(self.left + self.width),
                    "y2": num(self.bottom),
                },
            ),
            Mark(
                "line",
                {
                    "class": "axis",
                    "x1": num(self.left),
                    "y1": num(self.top),
                    "x2": num(self.left),
                    "y2": num(self.bottom),
                },
            ),
            Mark(
                "text",
                {
                    "class": "axis-label",
                    "x": num(self.left + self.width / 2),
                    "y": num(self.bottom + 34),
                    "text-anchor": "middle",
                },
                text=x_label,
            ),
            Mark("text", {"class": "axis-label", "x": num(self.left), "y": num(self.top - 8)}, text=y_label),
        ]

    def y_ticks(self, fmt: str = "{:g}") -> list[Mark]:
        marks: list[Mark] = []
        for tick in nice_ticks(self.y_max):
            y = num(self.y(tick))
            marks.append(
                Mark(
                    "line", {"class": "grid", "x1": num(self.left), "y1": y, "x2": num(self.left + self.width), "y2": y}
                )
            )
            marks.append(
                Mark(
                    "text",
                    {
                        "class": "tick",
                        "x": num(self.left - 4),
                        "y": y,
                        "text-anchor": "end",
                        "dominant-baseline": "middle",
                    },
                    text=fmt.format(tick),
                )
            )
        return marks


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 up to ``maximum``: steps of 1, 2 or 5 times a power of ten."""
    if maximum <= 0:
        return [0.0]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(maximum / step + 1e-9) + 1)]
