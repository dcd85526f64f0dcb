"""The indexed table matcher answers exactly as trying every rule in order would."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profiles import profile, profiles

from service.engine import CompiledRuleset, profile_facts
from service.rulebook.fields import FIELDS

_DECISIONS = {name: spec for name, spec in FIELDS.items() if spec.decided_by is not None}


@st.composite
def facts(draw: st.DrawFn) -> dict[str, Any]:
    """A profile's facts with any decisions of earlier tables, absent ones included."""
    found = profile_facts(profile(draw(profiles())))
    for name, spec in _DECISIONS.items():
        if draw(st.booleans()):
            found[name] = (
                draw(st.sampled_from(spec.values))
                if spec.values is not None
                else draw(st.integers(min_value=1, max_value=1000))
            )
    return found


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seen=facts())
def test_indexed_matcher_agrees_with_trying_every_rule(ruleset: CompiledRuleset, seen: dict[str, Any]) -> None:
    for table in ruleset.tables.values():
        assert table is not None
        in_order = [rule for rule in table.rules if rule.matches(seen)]
        assert table.collect(seen) == in_order
        assert table.first(seen) == (in_order[0] if in_order else None)


def test_a_value_outside_an_enum_matches_only_rules_without_a_condition_on_it(ruleset: CompiledRuleset) -> None:
    table = ruleset.tables["family"]
    assert table is not None
    seen = {"workload.bound": "quantum", "workload.model_kind": "classic_ml", "traffic.peak_rps": 10}
    assert table.first(seen) == next(r for r in table.rules if r.matches(seen))
