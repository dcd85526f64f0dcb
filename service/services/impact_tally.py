"""What an impact analysis has counted so far, and how two tallies of consecutive ranges of the history add up.

A tally holds counters and bounded samples only, never per-decision data, and pickles: a worker process replays
one range of the history into a tally of its own and hands it back. Merging the tallies of consecutive ranges in
the history's order gives what one pass over the whole would have counted, exactly: counts add up; samples keep
the first ``sample_size`` in order; the counters' ties (``most_common``) keep the order of first appearance, since a
key the earlier range saw keeps its place; and the cost sums carry no rounding error, so the grouping of the
additions does not change a bit of them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from service.services.impact_report import Cause, ChangedDecision

__all__ = ["ExactSum", "ImpactTally"]


@dataclass(slots=True)
class ExactSum:
    """A sum of floats without rounding error: the non-overlapping partials of Shewchuk's algorithm (as
    ``math.fsum`` keeps them), read as the correctly rounded total. Whatever the order or grouping of the additions,
    the total is the same float."""

    partials: list[float] = field(default_factory=list)

    def add(self, x: float) -> None:
        partials, i = self.partials, 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                partials[i] = low
                i += 1
            x = high
        partials[i:] = [x]

    def merge(self, other: ExactSum) -> None:
        for partial in other.partials:
            self.add(partial)

    def total(self) -> float:
        return math.fsum(self.partials)


def _first(samples: list[Any], later: list[Any], size: int) -> None:
    samples.extend(later[: max(0, size - len(samples))])


@dataclass(slots=True)
class ImpactTally:
    """The counts of an analysis (``ImpactAnalysis`` adds to them); see the module's docstring for ``merge``."""

    sample_size: int
    decisions: int = 0
    changed: int = 0
    refused: int = 0
    refused_by_engine: int = 0
    undecodable: int = 0
    by_field: Counter[str] = field(default_factory=Counter)
    engine_by_field: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, Any, Any]] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    causes: Counter[Cause] = field(default_factory=Counter)
    other_engines: Counter[str] = field(default_factory=Counter)
    cost_delta: ExactSum = field(default_factory=ExactSum)
    engine_cost_delta: ExactSum = field(default_factory=ExactSum)
    sample: list[ChangedDecision] = field(default_factory=list)
    refused_sample: list[dict[str, str]] = field(default_factory=list)
    undecodable_sample: list[dict[str, str]] = field(default_factory=list)

    def merge(self, later: ImpactTally) -> None:
        """Add the tally of the range of the history that follows this one's."""
        self.decisions += later.decisions
        self.changed += later.changed
        self.refused += later.refused
        self.refused_by_engine += later.refused_by_engine
        self.undecodable += later.undecodable
        self.by_field.update(later.by_field)
        self.engine_by_field.update(later.engine_by_field)
        self.transitions.update(later.transitions)
        self.rules.update(later.rules)
        self.causes.update(later.causes)
        self.other_engines.update(later.other_engines)
        self.cost_delta.merge(later.cost_delta)
        self.engine_cost_delta.merge(later.engine_cost_delta)
        _first(self.sample, later.sample, self.sample_size)
        _first(self.refused_sample, later.refused_sample, self.sample_size)
        _first(self.undecodable_sample, later.undecodable_sample, self.sample_size)
