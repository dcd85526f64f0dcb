"""Reading a report page back: the charts' plotted values from their SVG ``data-*`` attributes, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["Plotted", "plotted"]


@dataclass
class Plotted:
    """One chart: the ``data-*`` of its ``<svg>``, and each mark inside as (tag, class, its ``data-*``)."""

    root: dict[str, str]
    marks: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    title: str = ""
    desc: str = ""

    def of(self, css: str) -> list[dict[str, str]]:
        return [data for _, klass, data in self.marks if klass == css]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, Plotted] = {}
        self._current: Plotted | None = None
        self._text_of: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        data = {k.removeprefix("data-"): v for k, v in values.items() if k.startswith("data-")}
        if tag == "svg" and "chart" in data:
            self._current = Plotted(root=data)
            self.charts[data["chart"]] = self._current
        elif self._current is not None:
            if tag in ("title", "desc"):
                self._text_of = tag
            elif data:
                self._current.marks.append((tag, values.get("class", ""), data))

    def handle_data(self, text: str) -> None:
        if self._current is not None and self._text_of is not None:
            setattr(self._current, self._text_of, getattr(self._current, self._text_of) + text)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._current = None
        if tag in ("title", "desc"):
            self._text_of = None


def plotted(html: str) -> dict[str, Plotted]:
    """The charts of a page by key (``capacity``, ``scaling``, ``az``, ``cost``)."""
    reader = _Reader()
    reader.feed(html)
    return reader.charts
