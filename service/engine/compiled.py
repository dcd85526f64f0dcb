"""Rules compiled once at load: each condition becomes a predicate, each table a matcher.

Evaluation then only calls small closures over a flat dict of facts; nothing is re-parsed or
re-validated per request. Conditions on enum fields (whose values the rulebook lists) are
answered for every value at load, as one bitmask of the rules each value admits; a lookup then
narrows a table to the rules left to check, and only their numeric conditions run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.rulebook.fields import FIELDS, TableName
from service.rulebook.loader import LoadedRuleset
from service.rulebook.models import Catalog, CatalogInstance, Ops

__all__ = ["CompiledRule", "CompiledRuleset", "CompiledTable", "compile_ruleset"]

Predicate = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    checks: tuple[tuple[str, Predicate], ...]
    then: Any  # the table's outcome model
    outcome: dict[str, Any]  # `then` as JSON-ready data, for explanations; shared, never mutated
    because: str

    def matches(self, facts: Mapping[str, Any]) -> bool:
        for field, check in self.checks:  # noqa: SIM110 - no generator per call on the hot path
            if not check(facts.get(field)):
                return False
        return True

    def matched(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        """The inputs this rule tested, with the values it saw."""
        return {field: facts.get(field) for field, _ in self.checks}


@dataclass(frozen=True, slots=True)
class _EnumIndex:
    """Per enum field: the bitmask of rules each value admits (bit i = rule i), and the rules admitted
    when the value is absent (those with no condition on the field)."""

    field: str
    by_value: Mapping[Any, int]
    absent: int


@dataclass(frozen=True, slots=True)
class CompiledTable:
    name: TableName
    hit_policy: str
    rules: tuple[CompiledRule, ...]
    index: tuple[_EnumIndex, ...] = ()
    # Per rule, the checks the index does not answer (numeric ranges, fields without listed values).
    residual: tuple[tuple[tuple[str, Predicate], ...], ...] = ()

    def _candidates(self, facts: Mapping[str, Any]) -> int:
        mask = (1 << len(self.rules)) - 1
        for entry in self.index:
            mask &= entry.by_value.get(facts.get(entry.field), entry.absent)
            if not mask:
                break
        return mask

    def _passes(self, i: int, facts: Mapping[str, Any]) -> bool:
        for field, check in self.residual[i]:  # noqa: SIM110 - no generator per call on the hot path
            if not check(facts.get(field)):
                return False
        return True

    def first(self, facts: Mapping[str, Any]) -> CompiledRule | None:
        mask = (1 << len(self.rules)) - 1
        for entry in self.index:  # inlined _candidates: this is the hot path of every evaluation
            mask &= entry.by_value.get(facts.get(entry.field), entry.absent)
        residual = self.residual
        while mask:
            low = mask & -mask
            i = low.bit_length() - 1
            for field, check in residual[i]:
                if not check(facts.get(field)):
                    break
            else:
                return self.rules[i]
            mask ^= low
        return None

    def collect(self, facts: Mapping[str, Any]) -> list[CompiledRule]:
        found: list[CompiledRule] = []
        mask = self._candidates(facts)
        while mask:
            low = mask & -mask
            i = low.bit_length() - 1
            if self._passes(i, facts):
                found.append(self.rules[i])
            mask ^= low
        return found


def _indexed(name: TableName, hit_policy: str, rules: tuple[CompiledRule, ...]) -> CompiledTable:
    """A table with its enum conditions answered for every listed value (see the module docstring)."""
    enum_fields = sorted(
        {f for rule in rules for f, _ in rule.checks if FIELDS.get(f) is not None and FIELDS[f].values is not None}
    )
    index = []
    for field in enum_fields:
        values = FIELDS[field].values or ()
        by_value: dict[Any, int] = {}
        absent = 0
        for i, rule in enumerate(rules):
            check = dict(rule.checks).get(field)
            if check is None:
                absent |= 1 << i
            for value in values:
                if check is None or check(value):
                    by_value[value] = by_value.get(value, 0) | 1 << i
        index.append(_EnumIndex(field, by_value, absent))
    indexed = set(enum_fields)
    residual = tuple(tuple((f, c) for f, c in rule.checks if f not in indexed) for rule in rules)
    return CompiledTable(name, hit_policy, rules, tuple(index), residual)


@dataclass(frozen=True, slots=True, repr=False)
class CompiledRuleset:
    version: str
    sha256: str
    tables: Mapping[TableName, CompiledTable]
    catalog: Catalog
    # Instance types of each family, cheapest (smallest) first, the newest generation first on equal price.
    by_family: Mapping[str, tuple[CatalogInstance, ...]]
    # The same types, newest generation first, cheapest first within one.
    newest_first: Mapping[str, tuple[CatalogInstance, ...]]
    source: LoadedRuleset
    instance_types: Mapping[str, CatalogInstance]

    def __repr__(self) -> str:
        return f"CompiledRuleset(version={self.version!r}, sha256={self.sha256[:12]!r}...)"


def compile_ruleset(ruleset: LoadedRuleset) -> CompiledRuleset:
    """Compile a validated ruleset for evaluation."""
    tables = {
        name: _indexed(
            name,
            table.hit_policy,
            tuple(
                CompiledRule(
                    id=rule.id,
                    checks=tuple((field, _predicate(cond)) for field, cond in rule.when.items()),
                    then=rule.then,
                    outcome=rule.then.model_dump(mode="json", exclude_unset=True),  # as the rule file states it
                    because=rule.because,
                )
                for rule in table.rules
            ),
        )
        for name, table in ruleset.tables.items()
    }
    by_family: dict[str, list[CatalogInstance]] = {}
    for inst in ruleset.catalog.instances:
        by_family.setdefault(inst.family, []).append(inst)
    ordered = {
        family: tuple(sorted(items, key=lambda i: (i.usd_per_hour, -i.generation[0], i.vcpus, i.type)))
        for family, items in by_family.items()
    }
    newest = {
        family: tuple(sorted(items, key=lambda i: i.generation, reverse=True)) for family, items in ordered.items()
    }
    return CompiledRuleset(
        version=ruleset.version,
        sha256=ruleset.sha256,
        tables=tables,
        catalog=ruleset.catalog,
        by_family=ordered,
        newest_first=newest,
        source=ruleset,
        instance_types={inst.type: inst for inst in ruleset.catalog.instances},
    )


def _predicate(cond: Any) -> Predicate:
    if isinstance(cond, list):
        allowed = frozenset(cond)
        return lambda v: v is not None and v in allowed
    if not isinstance(cond, Ops):
        return lambda v: v is not None and v == cond
    parts: list[Predicate] = []
    if cond.eq is not None:
        eq = cond.eq
        parts.append(lambda v: v == eq)
    if cond.in_ is not None:
        one_of = frozenset(cond.in_)
        parts.append(lambda v: v in one_of)
    if cond.not_in is not None:
        none_of = frozenset(cond.not_in)
        parts.append(lambda v: v not in none_of)
    ranged = _range(cond)
    if ranged is not None:
        if not parts:
            return ranged
        parts.append(ranged)
    if len(parts) == 1:
        only = parts[0]
        return lambda v: v is not None and only(v)
    frozen = tuple(parts)
    return lambda v: v is not None and all(p(v) for p in frozen)


def _range(cond: Ops) -> Predicate | None:
    """gt/gte/lt/lte as one None-safe comparison chain: one call per check, not one per bound."""
    lo = cond.gt if cond.gt is not None else cond.gte
    hi = cond.lt if cond.lt is not None else cond.lte
    lo_open, hi_open = cond.gt is not None, cond.lt is not None
    if lo is None and hi is None:
        return None
    if hi is None:
        return (lambda v: v is not None and v > lo) if lo_open else (lambda v: v is not None and v >= lo)
    if lo is None:
        return (lambda v: v is not None and v < hi) if hi_open else (lambda v: v is not None and v <= hi)
    if lo_open:
        return (lambda v: v is not None and lo < v < hi) if hi_open else (lambda v: v is not None and lo < v <= hi)
    return (lambda v: v is not None and lo <= v < hi) if hi_open else (lambda v: v is not None and lo <= v <= hi)
