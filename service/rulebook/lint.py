"""Static analysis of a loaded ruleset, in the manner of DMN decision-table analysis.

For every ``first`` table the linter reports

* **unsatisfiable** rules (error): some condition admits no valid value of its field, e.g.
  ``{gt: 5, lt: 3}``, ``eq: 5000`` on a field whose domain ends at 4096, or ``eq: 2.5`` on an
  integer field;
* **unreachable** rules (error): every profile the rule matches is matched by an earlier rule,
  so the rule can never fire; the finding names the earlier rules that take its profiles;
* **gaps** (error): profiles no rule matches, with up to three example regions;

and for every ``collect`` table the unsatisfiable rules and rules whose conditions match exactly
the same profiles as an earlier rule (warning). Unconditional rules (``when: {}``) are not
reported as duplicates of one another: in a ``collect`` table "always add this" is a deliberate
pattern, and each such rule contributes a different outcome.

Method
------
A table's rules only test the fields they name, and each condition tests one field by
equality, membership or comparison with constants. Take the fields named anywhere in the table
and, for each, split its domain into the *cells* the table's constants induce:

* an enum field: one cell per enum value (``decision.multi_az``: ``true`` and ``false``);
* a numeric field: every constant used in a condition on it (``eq``, ``in``, ``not_in``, ``gt``,
  ``gte``, ``lt``, ``lte``), clipped to the field's domain, is a one-point cell, and each open
  interval between consecutive constants (or between a constant and a domain end) is a cell
  represented by one point inside it; an integer field's cells hold integers only, and cells
  holding no valid value are dropped;
* an optional field gets one more cell, *absent*; no condition on the field matches it.

Every condition is constant on every cell: for a comparison with constant ``c``, ``c`` is a
cell boundary, so all values of an open cell lie on the same side of ``c``; for (in)equality
with ``c``, ``c`` is a cell of its own and no other cell contains it. A rule is a conjunction of
per-field conditions, so it is constant on every product of cells (a *profile class*), and the
classes partition the input space. Evaluating each rule on one representative point per class
therefore decides exactly which classes it matches; nothing is sampled and nothing is
approximated. The set of classes a rule matches is held as a Python ``int`` bitmask, built as the
product of the rule's per-field cell masks, so "covered by earlier rules" and "matched by no rule"
are a few big-integer operations.

The number of classes is the product of the per-field cell counts; above ``MAX_PROFILE_CLASSES``
the linter reports a warning instead of enumerating. Unsatisfiable rules and duplicates need no
enumeration (a conjunction of per-field conditions is empty exactly when one of its per-field
sets is, and two non-empty products are equal exactly when their factors are), so they are
always checked.

Relations between fields that a valid profile must satisfy (``traffic.peak_to_mean`` is absent
exactly when ``traffic.mean_rps`` is, a ``decision.*`` value that no earlier rule can produce)
are out of scope: the linter treats fields as independent, so a reported gap may be one no
valid profile falls into, but a reported *absence* of gaps is always true.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.rulebook.fields import FIELDS, FieldSpec
from service.rulebook.loader import LoadedRuleset
from service.rulebook.models import Ops

__all__ = ["MAX_PROFILE_CLASSES", "LintFinding", "Severity", "lint_ruleset"]

MAX_PROFILE_CLASSES = 200_000
MAX_GAP_EXAMPLES = 3

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class LintFinding:
    """One finding, located like a :class:`~service.rulebook.loader.RuleFileError`.

    ``str()`` gives ``rules/tables/family.yaml:12 rule 'x': unreachable: every profile it
    matches is matched earlier by 'a', 'b'``: location, rule, then ``code: message``.
    """

    file: str
    line: int
    rule_id: str | None
    severity: Severity
    code: str  # unreachable | unsatisfiable | gap | duplicate | too-large
    message: str

    def __str__(self) -> str:
        rule = f" rule '{self.rule_id}'" if self.rule_id else ""
        return f"{self.file}:{self.line}{rule}: {self.code}: {self.message}"


def lint_ruleset(
    ruleset: LoadedRuleset, *, label: str = "rules", max_profile_classes: int = MAX_PROFILE_CLASSES
) -> list[LintFinding]:
    """Analyse every table of ``ruleset``; findings in table order, then by line.

    ``label`` prefixes file names, as the loader's ``label`` does.
    """
    findings: list[LintFinding] = []
    for name, table in ruleset.tables.items():
        rules: Sequence[Any] = table.rules
        rel = _table_file(ruleset, name, [rule.id for rule in rules])
        linter = _TableLinter(
            file=f"{label}/{rel}",
            rules=[_RuleInfo(rule.id, ruleset.lines.get((rel, rule.id), 1), dict(rule.when)) for rule in rules],
        )
        found = linter.lint_first(max_profile_classes) if table.hit_policy == "first" else linter.lint_collect()
        findings.extend(sorted(found, key=lambda f: f.line))
    return findings


# ---------------------------------------------------------------- locating a table's file


def _table_file(ruleset: LoadedRuleset, name: str, rule_ids: list[str]) -> str:
    """The relative path of the file defining table ``name``.

    ``LoadedRuleset`` keeps rule lines by (file, rule id) but not which file holds which table;
    rule ids are unique only within a table, so take the files that hold all of this table's
    rule ids and, if that is not one file, the one whose ``table:`` key names this table.
    """
    candidates = sorted({rel for rel, _ in ruleset.lines})
    holding = [rel for rel in candidates if all((rel, rid) in ruleset.lines for rid in rule_ids)]
    if len(holding) == 1:
        return holding[0]
    names_it = re.compile(rf"^table:\s*['\"]?{re.escape(name)}['\"]?\s*(#.*)?$", re.MULTILINE)
    for rel in holding or candidates:
        if names_it.search(ruleset.files.get(rel, "")):
            return rel
    return f"tables/{name}.yaml"


# ---------------------------------------------------------------- cells of one field


_ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class _Cell:
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


def _cells(spec: FieldSpec, conditions: Iterable[Any]) -> list[_Cell]:
    cells: list[_Cell] = []
    if spec.values is not None:
        cells = [_Cell("value", value) for value in spec.values]
    else:
        cuts = sorted({spec.low, spec.high, *(c for cond in conditions for c in _constants(cond))})
        cuts = [c for c in cuts if spec.low <= c <= spec.high]
        for i, cut in enumerate(cuts):
            if i > 0:
                lo = cuts[i - 1]
                rep = _inside(lo, cut, spec.integer)
                if rep is not None:
                    cells.append(_Cell("open", rep, lo, cut))
            if _in_domain(spec, cut):
                cells.append(_Cell("point", int(cut) if spec.integer else cut, cut, cut))
    if spec.optional:
        cells.append(_Cell("absent", _ABSENT))
    return cells


def _inside(lo: float, hi: float, integer: bool) -> float | int | None:
    """A value strictly between ``lo`` and ``hi`` (an integer if ``integer``), or None."""
    if integer:
        n = math.floor(lo) + 1
        return n if n < hi else None
    mid = lo + (hi - lo) / 2
    return mid if lo < mid < hi else None


def _holds(cond: Any, value: Any) -> bool:
    """Whether ``cond`` matches ``value``, as the engine evaluates it (absent never matches)."""
    if value is _ABSENT:
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


def _render_condition(cond: Any) -> str:
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
            parts.append(f"{key}: {_render_condition(value)}")
    return "{" + ", ".join(parts) + "}"


def _render_domain(spec: FieldSpec) -> str:
    if spec.values is not None:
        return "one of " + ", ".join(_scalar(v) for v in spec.values)
    left = "(" if spec.low_open else "["
    right = ")" if spec.high_open else "]"
    kind = "integers" if spec.integer else "numbers"
    return f"{kind} in {left}{_num(spec.low)}, {_num(spec.high)}{right}"


def _render_run(field: str, spec: FieldSpec, run: list[_Cell]) -> str:
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


def _render_selection(field: str, spec: FieldSpec, cells: list[_Cell], selected: int) -> str | None:
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
    run: list[_Cell] = []
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


# ---------------------------------------------------------------- one table


@dataclass(frozen=True, slots=True)
class _RuleInfo:
    id: str
    line: int
    when: Mapping[str, Any]


class _TableLinter:
    def __init__(self, file: str, rules: list[_RuleInfo]) -> None:
        self.file = file
        self.rules = rules
        self.fields: list[str] = []
        for rule in rules:
            self.fields.extend(f for f in rule.when if f not in self.fields)
        self.specs = [FIELDS[f] for f in self.fields]
        self.cells = [
            _cells(spec, (r.when[f] for r in rules if f in r.when))
            for f, spec in zip(self.fields, self.specs, strict=True)
        ]
        # masks[r][i]: bit j set iff rule r's condition on field i holds on cell j (all set if untested)
        self.masks = [
            [
                self._field_mask(i, rule.when[f]) if f in rule.when else (1 << len(self.cells[i])) - 1
                for i, f in enumerate(self.fields)
            ]
            for rule in rules
        ]
        self.table_line = rules[0].line if rules else 1

    def _field_mask(self, index: int, cond: Any) -> int:
        mask = 0
        for j, cell in enumerate(self.cells[index]):
            if _holds(cond, cell.rep):
                mask |= 1 << j
        return mask

    def _finding(self, rule: _RuleInfo | None, severity: Severity, code: str, message: str) -> LintFinding:
        line = rule.line if rule is not None else self.table_line
        return LintFinding(self.file, line, rule.id if rule else None, severity, code, message)

    # ---- checks that need no enumeration

    def _unsatisfiable(self) -> tuple[list[LintFinding], set[int]]:
        findings: list[LintFinding] = []
        dead: set[int] = set()
        for r, rule in enumerate(self.rules):
            for i, field in enumerate(self.fields):
                if field in rule.when and self.masks[r][i] == 0:
                    spec = self.specs[i]
                    message = (
                        f"no valid value of {field} ({_render_domain(spec)}) satisfies "
                        f"{_render_condition(rule.when[field])}"
                    )
                    findings.append(self._finding(rule, "error", "unsatisfiable", message))
                    dead.add(r)
                    break
        return findings, dead

    def lint_collect(self) -> list[LintFinding]:
        findings, dead = self._unsatisfiable()
        seen: dict[tuple[int, ...], _RuleInfo] = {}
        for r, rule in enumerate(self.rules):
            if r in dead or not rule.when:
                continue
            key = tuple(self.masks[r])
            if key in seen:
                message = f"matches exactly the same profiles as '{seen[key].id}'"
                findings.append(self._finding(rule, "warning", "duplicate", message))
            else:
                seen[key] = rule
        return findings

    # ---- first tables: enumerate the profile classes

    def _product(self, selection: Sequence[int]) -> int:
        """Bitmask over all classes of the box whose per-field cell sets are ``selection``."""
        block, stride = 1, 1
        for i, selected in enumerate(selection):
            grown = 0
            j = 0
            while selected:
                if selected & 1:
                    grown |= block << (j * stride)
                selected >>= 1
                j += 1
            block = grown
            stride *= len(self.cells[i])
        return block

    def lint_first(self, max_profile_classes: int) -> list[LintFinding]:
        findings, dead = self._unsatisfiable()
        total = math.prod(len(cells) for cells in self.cells)
        if total > max_profile_classes:
            message = (
                f"table too large to analyse exhaustively: {total} profile classes, more than "
                f"{max_profile_classes}; unreachable rules and gaps were not checked"
            )
            findings.append(self._finding(None, "warning", "too-large", message))
            return findings

        covered = 0
        takes: list[int] = []  # the classes each rule actually fires on
        for r, rule in enumerate(self.rules):
            if r in dead:
                takes.append(0)
                continue
            matched = self._product(self.masks[r])
            takes.append(matched & ~covered)
            if matched & ~covered == 0:
                earlier = [f"'{self.rules[e].id}'" for e in range(r) if takes[e] & matched]
                message = f"every profile it matches is matched earlier by {', '.join(earlier)}"
                findings.append(self._finding(rule, "error", "unreachable", message))
            covered |= matched

        everything = (1 << total) - 1
        if covered != everything:
            findings.append(self._finding(None, "error", "gap", self._describe_gap(everything & ~covered)))
        return findings

    def _describe_gap(self, uncovered: int) -> str:
        """Up to MAX_GAP_EXAMPLES disjoint boxes of unmatched classes, each as one readable region."""
        regions: list[str] = []
        sizes = [len(cells) for cells in self.cells]
        remaining = uncovered
        while remaining and len(regions) < MAX_GAP_EXAMPLES:
            # Grow a box around the first undescribed class, one field at a time, keeping it inside
            # the undescribed part of the gap.
            index = (remaining & -remaining).bit_length() - 1
            selection: list[int] = []
            for size in sizes:
                selection.append(1 << (index % size))
                index //= size
            for i, size in enumerate(sizes):
                for j in range(size):
                    if selection[i] >> j & 1:
                        continue
                    trial = [*selection[:i], 1 << j, *selection[i + 1 :]]
                    slab = self._product(trial)
                    if slab & remaining == slab:
                        selection[i] |= 1 << j
            # Examples are disjoint: each box grows only into classes no earlier example describes.
            remaining &= ~self._product(selection)
            parts = [
                text
                for i, field in enumerate(self.fields)
                if (text := _render_selection(field, self.specs[i], self.cells[i], selection[i])) is not None
            ]
            regions.append(", ".join(parts) if parts else "any profile")
        more = "; and more" if remaining else ""
        return f"no rule matches {'; '.join(regions)}{more}"
