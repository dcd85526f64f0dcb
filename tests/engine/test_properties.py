"""Properties that must hold for every valid profile, not just the examples."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from profiles import profile, profiles

from service.engine import CompiledRuleset, ProfileRejected, evaluate


def _exact(x: float) -> Fraction:
    return Fraction(repr(x))


def _evaluate(ruleset: CompiledRuleset, data: dict[str, Any]) -> Any:
    try:
        return evaluate(profile(data), ruleset)
    except ProfileRejected as exc:
        # The only refusal a random valid profile may meet: a model larger than its family holds.
        assert exc.code == "model_does_not_fit", exc.message
        return None


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles())
def test_never_under_provisioned(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    """instances x per_instance_rps x target_utilization >= peak_rps, in exact arithmetic."""
    rec = _evaluate(ruleset, data)
    if rec is None:
        return
    t = data["traffic"]
    capacity = rec.capacity.instances * _exact(t["per_instance_rps"]) * _exact(data["target_utilization"])
    assert capacity >= _exact(t["peak_rps"])
    assert rec.capacity.min_instances <= rec.capacity.instances <= rec.capacity.max_instances
    assert sum(rec.capacity.per_az) == rec.capacity.instances


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles())
def test_az_loss_invariant_when_claimed(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    """When survives_az_loss is claimed, the fleet minus its largest AZ still carries the peak."""
    rec = _evaluate(ruleset, data)
    if rec is None or not rec.availability.survives_az_loss:
        return
    cap = rec.capacity
    assert len(cap.per_az) == rec.availability.az_count >= 2
    remaining = cap.instances - max(cap.per_az)
    degraded = _exact(rec.availability.degraded_utilization)
    assert remaining * _exact(data["traffic"]["per_instance_rps"]) * degraded >= _exact(data["traffic"]["peak_rps"])
    assert max(cap.per_az) - min(cap.per_az) <= 1
    # Static stability: the autoscaler's floor keeps the AZ-safe fleet (scheduled plans keep it per window).
    if rec.scaling.method != "scheduled":
        assert cap.min_instances == cap.instances


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles())
def test_deterministic_bytes(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    """The same profile and ruleset give byte-identical output."""
    first = _evaluate(ruleset, data)
    if first is None:
        return
    again = evaluate(profile(data), ruleset)
    assert msgspec.json.encode(first) == msgspec.json.encode(again)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles())
def test_every_output_names_its_rules(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    """Each decided part carries a rule id that fired, and predictive scaling is never emitted."""
    rec = _evaluate(ruleset, data)
    if rec is None:
        return
    fired = {e.rule_id for e in rec.explanation}
    for rule_id in (
        rec.instance.rule_id,
        rec.instance.sizing_rule_id,
        rec.scaling.rule_id,
        rec.availability.rule_id,
    ):
        assert rule_id in fired
    assert all(p.PolicyType != "PredictiveScaling" for p in rec.scaling.aws.scaling_policies)
    assert any(u.method == "predictive" for u in rec.scaling.unavailable_methods)
