"""What changed between two rulesets, rule by rule: for reviewing a pull request to rules/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.rulebook.loader import LoadedRuleset

__all__ = ["RuleChange", "RulesetDiff", "diff_rulesets", "render_diff"]


@dataclass(frozen=True, slots=True)
class RuleChange:
    table: str
    rule_id: str
    kind: str  # added | removed | changed | moved
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (old, new)


@dataclass(frozen=True, slots=True)
class RulesetDiff:
    old_version: str
    new_version: str
    old_sha256: str
    new_sha256: str
    rules: list[RuleChange]
    catalog: list[RuleChange]  # instance types added/removed/changed (table "catalog")

    @property
    def empty(self) -> bool:
        return not self.rules and not self.catalog


def _rule_data(rule: Any) -> dict[str, Any]:
    return {
        "when": rule.model_dump(mode="json", by_alias=True, exclude_unset=True).get("when", {}),
        "then": rule.then.model_dump(mode="json", exclude_unset=True),
        "because": rule.because,
    }


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) != new.get(key):
            changes[key] = (old.get(key), new.get(key))
    return changes


def diff_rulesets(old: LoadedRuleset, new: LoadedRuleset) -> RulesetDiff:
    """Rules added, removed, changed (with the changed parts: when.*, then.*, because) and moved."""
    changes: list[RuleChange] = []
    for table in sorted(old.tables.keys() | new.tables.keys()):
        old_rules = {r.id: r for r in getattr(old.tables.get(table), "rules", [])}
        new_rules = {r.id: r for r in getattr(new.tables.get(table), "rules", [])}
        old_order = [rid for rid in old_rules if rid in new_rules]
        new_order = [rid for rid in new_rules if rid in old_rules]
        for rid in new_rules.keys() - old_rules.keys():
            changes.append(RuleChange(table, rid, "added"))
        for rid in old_rules.keys() - new_rules.keys():
            changes.append(RuleChange(table, rid, "removed"))
        for rid in new_order:
            before, after = _rule_data(old_rules[rid]), _rule_data(new_rules[rid])
            flat_before = _flatten(before)
            flat_after = _flatten(after)
            fields = _changed_fields(flat_before, flat_after)
            if fields:
                changes.append(RuleChange(table, rid, "changed", fields))
            elif old_order.index(rid) != new_order.index(rid) and table not in ("monitoring", "advisories"):
                # In a first-hit table the order decides: a move changes behaviour.
                changes.append(
                    RuleChange(table, rid, "moved", {"position": (old_order.index(rid), new_order.index(rid))})
                )
    changes.sort(key=lambda c: (c.table, c.kind, c.rule_id))
    old_types = {i.type: i.model_dump(mode="json", exclude_none=True) for i in old.catalog.instances}
    new_types = {i.type: i.model_dump(mode="json", exclude_none=True) for i in new.catalog.instances}
    catalog = [RuleChange("catalog", t, "added") for t in sorted(new_types.keys() - old_types.keys())]
    catalog += [RuleChange("catalog", t, "removed") for t in sorted(old_types.keys() - new_types.keys())]
    for t in sorted(old_types.keys() & new_types.keys()):
        fields = _changed_fields(_flatten(old_types[t]), _flatten(new_types[t]))
        if fields:
            catalog.append(RuleChange("catalog", t, "changed", fields))
    return RulesetDiff(old.version, new.version, old.sha256, new.sha256, changes, catalog)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def render_diff(diff: RulesetDiff) -> str:
    lines = [f"ruleset {diff.old_version} ({diff.old_sha256[:12]}) -> {diff.new_version} ({diff.new_sha256[:12]})"]
    if diff.empty:
        return "\n".join([*lines, "no rule or catalog changes"]) + "\n"
    for change in [*diff.rules, *diff.catalog]:
        lines.append(f"{change.kind:8} {change.table}/{change.rule_id}")
        lines += [f"           {name}: {old!r} -> {new!r}" for name, (old, new) in change.fields.items()]
    return "\n".join(lines) + "\n"
