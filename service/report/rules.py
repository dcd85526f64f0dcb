"""Every rule that fired, with its reason and where it is written in the stored ruleset (file and line)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from service.rulebook.loader import RulesetInvalid, yaml_with_lines

__all__ = ["RuleRow", "fired_rules", "rule_locations"]


@dataclass(frozen=True, slots=True)
class RuleRow:
    table: str
    rule_id: str
    reason: str  # the rule's `because`, or what it matched when the ruleset is not at hand
    matched: str
    outcome: str
    file: str | None
    line: int | None


@dataclass(frozen=True, slots=True)
class _Located:
    file: str
    line: int | None
    because: str


def rule_locations(files: Mapping[str, str]) -> dict[tuple[str, str], _Located]:
    """(table, rule id) -> file, line and reason, for every rule of every table file."""
    found: dict[tuple[str, str], _Located] = {}
    for path, text in sorted(files.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        try:
            data, lines = yaml_with_lines(text, path)
        except RulesetInvalid:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            continue
        table = str(data.get("table", ""))
        for index, rule in enumerate(data["rules"]):
            if isinstance(rule, dict) and "id" in rule:
                line = lines.get(("rules", index, "id"))
                found[(table, str(rule["id"]))] = _Located(path, line, " ".join(str(rule.get("because", "")).split()))
    return found


def fired_rules(explanation: Iterable[Mapping[str, Any]], files: Mapping[str, str]) -> list[RuleRow]:
    locations = rule_locations(files)
    rows: list[RuleRow] = []
    for entry in explanation:
        table, rule_id = str(entry.get("table", "")), str(entry.get("rule_id", ""))
        where = locations.get((table, rule_id))
        rows.append(
            RuleRow(
                table=table,
                rule_id=rule_id,
                reason=where.because if where else "",
                matched=_pairs(entry.get("matched")),
                outcome=_pairs(entry.get("outcome")),
                file=where.file if where else None,
                line=where.line if where else None,
            )
        )
    return rows


def _pairs(value: Any) -> str:
    if not isinstance(value, Mapping):
        return ""
    return ", ".join(f"{key} = {item}" for key, item in value.items())
