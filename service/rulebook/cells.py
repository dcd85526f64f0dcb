"""A field's domain split into cells on which every condition of a table is constant, and how the linter renders
conditions, domains and sets of cells (see ``service.rulebook.lint`` for the method)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from service.rulebook.fields import FieldSpec
from service.rulebook.models import Ops

__all__ = ["ABSENT", "Cell", "cells_of", "holds", "render_condition", "render_domain", "render_selection"]

# ---------------------------------------------------------------- cells of one field


ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class Cell:
    """A set of a field's values on which every condition of the table is constant.

    ``kind``: ``absent``; ``value`` (an enum value); ``point`` (the number ``lo == hi``); or
    ``open`` (the numbers strictly between ``lo`` and ``hi``). ``rep`` is one member.
    """

    kind: Literal["absent", "value", "point", "open"]
    rep: Any
    lo: float = 0.0
    hi: float = 0.0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _constants(cond: Any) -> Iterable[float]:
    if isinstance(cond, Ops):
        values: list[Any] = [cond.eq, *(cond.in_ or ()), *(cond.not_in or ())]
        values += [cond.gt, cond.gte, cond.lt, cond.lte]
    elif isinstance(cond, list):
        values = list(cond)
    else:
        values = [cond]
    for value in values:
        if _is_number(value) and math.isfinite(value):
            yield float(value)


def _in_domain(spec: FieldSpec, x: float) -> bool:
    above = x > spec.low if spec.low_open else x >= spec.low
    below = x < spec.high if spec.high_open else x <= spec.high
    return above and below and (not spec.integer or x == int(x))


def cells_of(spec: FieldSpec, conditions: Iterable[Any]) -> list[Cell]:
    cells: list[Cell] = []
    if spec.values is not None:
        cells = [Cell("value", value) for value in spec.values]
    else:
        cuts = sorted({spec.low, spec.high, *(c for cond in conditions for c in _constants(cond))})
        cuts = [c for c in cuts if spec.low <= c <= spec.high]
        for i, cut in enumerate(cuts):
            if i > 0:
                lo = cuts[i - 1]
                rep = _inside(lo, cut, spec.integer)
                if rep is not None:
                    cells.append(Cell("open", rep, lo, cut))
            if _in_domain(spec, cut):
                cells.append(Cell("point", int(cut) if spec.integer else cut, cut, cut))
    if spec.optional:
        cells.append(Cell("absent", ABSENT))
    return cells


def _inside(lo: float, hi: float, integer: bool) -> float | int | None:
    """A value strictly between ``lo`` and ``hi`` (an integer if ``integer``), or None."""
    if integer:
        n = math.floor(lo) + 1
        return n if n < hi else None
    mid = lo + (hi - lo) / 2
    return mid if lo < mid < hi else None


def holds(cond: Any, value: Any) -> bool:
    """Whether ``cond`` matches ``value``, as the engine evaluates it (absent never matches)."""
    if value is ABSENT:
        return False
    if isinstance(cond, list):
        return any(_same(value, c) for c in cond)
    if not isinstance(cond, Ops):
        return _same(value, cond)
    return (
        (cond.eq is None or _same(value, cond.eq))
        and (cond.in_ is None or any(_same(value, c) for c in cond.in_))
        and (cond.not_in is None or not any(_same(value, c) for c in cond.not_in))
        and (cond.gt is None or value > cond.gt)
        and (cond.gte is None or value >= cond.gte)
        and (cond.lt is None or value < cond.lt)
        and (cond.lte is None or value <= cond.lte)
    )


def _same(value: Any, constant: Any) -> bool:
    # The loader only lets numbers meet numbers and enum values meet values of their own type.
    return bool(value == constant)


# ---------------------------------------------------------------- rendering


def _num(x: float) -> str:
    text = repr(float(x))
    return text.removesuffix(".0")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return _num(value)
    return str(value)


def render_condition(cond: Any) -> str:
    if isinstance(cond, list):
        return "[" + ", ".join(_scalar(v) for v in cond) + "]"
    if not isinstance(cond, Ops):
        return _scalar(cond)
    parts: list[str] = []
    for key, value in (
        ("eq", cond.eq),
        ("in", cond.in_),
        ("not_in", cond.not_in),
        ("gt", cond.gt),
        ("gte", cond.gte),
        ("lt", cond.lt),
        ("lte", cond.lte),
    ):
        if value is not None:
            parts.append(f"{key}: {render_condition(value)}")
    return "{" + ", ".join(parts) + "}"


def render_domain(spec: FieldSpec) -> str:
    if spec.values is not None:
        return "one of " + ", ".join(_scalar(v) for v in spec.values)
    left = "(" if spec.low_open else "["
    right = ")" if spec.high_open else "]"
    kind = "integers" if spec.integer else "numbers"
    return f"{kind} in {left}{_num(spec.low)}, {_num(spec.high)}{right}"


def _render_run(field: str, spec: FieldSpec, run: list[Cell]) -> str:
    """A run of adjacent numeric cells as one interval (or one value)."""
    first, last = run[0], run[-1]
    if spec.integer:
        low = int(first.rep) if first.kind == "point" else math.floor(first.lo) + 1
        high = int(last.rep) if last.kind == "point" else math.ceil(last.hi) - 1
        return f"{field}={low}" if low == high else f"{field} in [{low}, {high}]"
    if first is last and first.kind == "point":
        return f"{field}={_num(first.lo)}"
    left = f"[{_num(first.lo)}" if first.kind == "point" else f"({_num(first.lo)}"
    right = f"{_num(last.hi)}]" if last.kind == "point" else f"{_num(last.hi)})"
    return f"{field} in {left}, {right}"


def render_selection(field: str, spec: FieldSpec, cells: list[Cell], selected: int) -> str | None:
    """Describe the cells of ``field`` whose bits are set in ``selected``; None if all are."""
    if selected == (1 << len(cells)) - 1:
        return None
    parts: list[str] = []
    chosen = [cell for i, cell in enumerate(cells) if selected >> i & 1]
    if any(cell.kind == "absent" for cell in chosen):
        parts.append(f"{field} absent")
    values = [cell for cell in chosen if cell.kind == "value"]
    if len(values) == 1:
        parts.append(f"{field}={_scalar(values[0].rep)}")
    elif values:
        parts.append(f"{field} in {{{', '.join(_scalar(c.rep) for c in values)}}}")
    run: list[Cell] = []
    for i, cell in enumerate(cells):
        if cell.kind not in ("point", "open"):
            continue
        if selected >> i & 1:
            run.append(cell)
        elif run:
            parts.append(_render_run(field, spec, run))
            run = []
    if run:
        parts.append(_render_run(field, spec, run))
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"
