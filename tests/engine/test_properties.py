"""Properties that must hold for every valid profile, not just the examples."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from profiles import profile, profiles

from service.contract import Recommendation
from service.engine import CompiledRuleset, ProfileRejected, evaluate

# Refusals a random valid profile may meet: no type holds the model, or no load test applies and no
# rate was given to assume.
_ALLOWED_REFUSALS = {"model-does-not-fit", "throughput-unknown"}


def _exact(x: float) -> Fraction:
    return Fraction(repr(x))


# Every payload passing botocore's validation, CreateEndpointConfig included, is a property test in
# tests/engine/test_aws_payloads.py.


def _evaluate(ruleset: CompiledRuleset, data: dict[str, Any]) -> Any:
    try:
        return evaluate(profile(data), ruleset)
    except ProfileRejected as exc:
        assert exc.code in _ALLOWED_REFUSALS, exc.message
        return None


def _target_per_minute(rec: Recommendation) -> Fraction:
    """The per-instance load the emitted policy aims at: TargetValue, or the step policy's scale-out alarm."""
    if rec.scaling.target_value is not None:
        return _exact(rec.scaling.target_value)
    return _exact(rec.scaling.aws.alarms[0].Threshold)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles())
def test_utilization_at_peak_within_the_target(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    """The fleet at peak carries the peak at or below the target per instance, on the throughput basis."""
    rec = _evaluate(ruleset, data)
    if rec is None:
        return
    cap = rec.capacity
    assert cap.instances * _target_per_minute(rec) >= _exact(data["traffic"]["peak_rps"]) * 60
    assert _target_per_minute(rec) <= _exact(cap.throughput_basis.per_instance_rps) * 60 * _exact(
        data["target_utilization"]
    )
    assert cap.min_instances <= cap.instances <= cap.max_instances
    assert sum(cap.per_az) == cap.instances and max(cap.per_az) - min(cap.per_az) <= 1


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles())
def test_az_safe_at_steady_state_for_every_load_up_to_max(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    """n(L) instances over k AZs: the n - ceil(n/k) left after losing the largest AZ carry L, for every n."""
    rec = _evaluate(ruleset, data)
    if rec is None or not rec.availability.survives_az_loss:
        return
    cap, k = rec.capacity, rec.availability.az_count
    rate = _exact(cap.throughput_basis.per_instance_rps) * 60 * _exact(rec.availability.degraded_utilization)
    target = _target_per_minute(rec)
    # Every size from min to max (bounded for huge fleets: the worst is min or the first n = qk + 1 above it,
    # service.engine.capacity.worst_az_share).
    for n in range(cap.min_instances, min(cap.max_instances, cap.min_instances + 500) + 1):
        assert n * target <= (n - -(-n // k)) * rate, (n, k)
    assert cap.utilization_at_peak_after_az_loss is not None
    assert cap.utilization_at_peak_after_az_loss <= rec.availability.degraded_utilization + 1e-4


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles())
def test_cost_min_expected_peak_are_ordered(ruleset: CompiledRuleset, data: dict[str, Any]) -> None:
    rec = _evaluate(ruleset, data)
    if rec is None:
        return
    cost = rec.cost
    assert cost.usd_per_month_min <= cost.usd_per_month_expected <= cost.usd_per_month_peak
    assert cost.usd_per_month == cost.usd_per_month_peak


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
