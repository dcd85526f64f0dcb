"""Rules compiled once at load: each condition becomes a predicate, each table a matcher.

Evaluation then only calls small closures over a flat dict of facts; nothing is re-parsed or
re-validated per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.rulebook.fields import TableName
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
class CompiledTable:
    name: TableName
    hit_policy: str
    rules: tuple[CompiledRule, ...]

    def first(self, facts: Mapping[str, Any]) -> CompiledRule | None:
        for rule in self.rules:
            if rule.matches(facts):
                return rule
        return None

    def collect(self, facts: Mapping[str, Any]) -> list[CompiledRule]:
        return [rule for rule in self.rules if rule.matches(facts)]


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
        name: CompiledTable(
            name=name,
            hit_policy=table.hit_policy,
            rules=tuple(
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
    if cond.gt is not None:
        gt = cond.gt
        parts.append(lambda v: v > gt)
    if cond.gte is not None:
        gte = cond.gte
        parts.append(lambda v: v >= gte)
    if cond.lt is not None:
        lt = cond.lt
        parts.append(lambda v: v < lt)
    if cond.lte is not None:
        lte = cond.lte
        parts.append(lambda v: v <= lte)
    if len(parts) == 1:
        only = parts[0]
        return lambda v: v is not None and only(v)
    frozen = tuple(parts)
    return lambda v: v is not None and all(p(v) for p in frozen)
