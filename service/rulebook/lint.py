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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.rulebook.cells import cells_of, holds, render_condition, render_domain, render_selection
from service.rulebook.fields import FIELDS
from service.rulebook.loader import LoadedRuleset

__all__ = ["MAX_PROFILE_CLASSES", "LintFinding", "Severity", "lint_ruleset"]

# A class is one bit of a Python int, so a few million classes are ints of some hundred KiB and a table's
# analysis takes milliseconds (the shipped hosting table: 2.6 million classes, about 30 ms, its gaps described in
# well under a second); the bound keeps a pathological table from taking memory and time without limit.
MAX_PROFILE_CLASSES = 5_000_000
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
    ruleset: LoadedRuleset, *, label: str | None = None, max_profile_classes: int = MAX_PROFILE_CLASSES
) -> list[LintFinding]:
    """Analyse every table of ``ruleset``; findings in table order, then by line.

    ``label`` prefixes file names (default: the ruleset's own, so findings name the files that were loaded).
    """
    prefix = ruleset.label if label is None else label
    findings: list[LintFinding] = []
    for name, table in ruleset.tables.items():
        rules: Sequence[Any] = table.rules
        rel = ruleset.table_files.get(name, f"tables/{name}.yaml")
        linter = _TableLinter(
            file=f"{prefix}/{rel}",
            rules=[_RuleInfo(rule.id, ruleset.lines.get((rel, rule.id), 1), dict(rule.when)) for rule in rules],
        )
        found = linter.lint_first(max_profile_classes) if table.hit_policy == "first" else linter.lint_collect()
        findings.extend(sorted(found, key=lambda f: f.line))
    return findings


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
            cells_of(spec, (r.when[f] for r in rules if f in r.when))
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
            if holds(cond, cell.rep):
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
                        f"no valid value of {field} ({render_domain(spec)}) satisfies "
                        f"{render_condition(rule.when[field])}"
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
                if (text := render_selection(field, self.specs[i], self.cells[i], selection[i])) is not None
            ]
            regions.append(", ".join(parts) if parts else "any profile")
        more = "; and more" if remaining else ""
        return f"no rule matches {'; '.join(regions)}{more}"
