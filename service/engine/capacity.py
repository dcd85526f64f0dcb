"""Capacity arithmetic: how many instances, spread how, and the formulas shown to users.

Counts are computed with exact fractions of the decimal values the caller wrote (0.7 is 7/10,
not the nearest binary float), so float noise such as 20 x 0.7 = 14.000000000000002 can never
add or drop an instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "CapacityPlan",
    "ScalingTarget",
    "ceil_div",
    "exact",
    "fmt",
    "plan_capacity",
    "scaling_target",
    "spread",
    "worst_az_share",
]


@lru_cache(maxsize=4096)  # the same prices, rates and ratios recur across evaluations
def fmt(x: float | Fraction) -> str:
    """A number as people write it: 0.7, 10.71, 150 (no float noise, at most 4 decimals)."""
    value = float(x)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    short = repr(value)
    if len(short) <= 7 and "e" not in short:  # already as written: 0.7, 10.25
        return short
    return f"{value:.4f}".rstrip("0").rstrip(".")


@lru_cache(maxsize=4096)  # Fractions are immutable; rates and ratios recur
def exact(x: float) -> Fraction:
    """The decimal number a float was written as: repr() is the shortest round-tripping form."""
    return Fraction(repr(x))


def ceil_div(numerator: float, *denominator: float) -> int:
    """ceil(numerator / product(denominator)) in exact decimal arithmetic, fast.

    Floats answer unless the quotient is within rounding distance of an integer; only then is
    the exact fraction computed (rarely: e.g. 14 / (20 x 0.7)).
    """
    product = 1.0
    for d in denominator:
        product *= d
    quotient = numerator / product
    nearest = round(quotient)
    if abs(quotient - nearest) > 1e-9 * max(1.0, abs(quotient)):
        return math.ceil(quotient)
    exact_product = Fraction(1)
    for d in denominator:
        exact_product *= exact(d)
    return math.ceil(exact(numerator) / exact_product)


def spread(instances: int, az_count: int) -> list[int]:
    """Instances per AZ, as even as possible, larger shares first."""
    base, extra = divmod(instances, az_count)
    return [base + 1 if i < extra else base for i in range(az_count)]


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    rps: float
    base: int
    az_safe: int
    floor: int
    instances: int
    per_az: list[int]
    steps: list[str]


def plan_capacity(
    *,
    rps: float,
    per_instance_rps: float,
    target_utilization: float,
    az_count: int,
    survives_az_loss: bool,
    degraded_utilization: float,
    floor: int,
    explain: bool = True,
) -> CapacityPlan:
    """Instances needed to carry ``rps``.

    base      = ceil(rps / (per_instance_rps x target_utilization))
    AZ-safe   = k x ceil(rps / ((k - 1) x per_instance_rps x degraded_utilization))   when surviving an AZ loss
    instances = max(base, AZ-safe, floor), rounded up to a multiple of k when spread over k AZs,
    because SageMaker spreads instances over AZs itself and an even spread is the only one the
    AZ-loss guarantee can rely on.
    """
    base = max(1, ceil_div(rps, per_instance_rps, target_utilization))
    steps: list[str] = []
    if explain:
        raw = rps / (per_instance_rps * target_utilization)
        steps.append(
            f"base = ceil({fmt(rps)} / ({fmt(per_instance_rps)} x {fmt(target_utilization)})) "
            f"= ceil({fmt(raw)}) = {base}"
        )
    az_safe = 0
    if survives_az_loss and az_count >= 2:
        per_az_needed = max(1, ceil_div(rps, az_count - 1, per_instance_rps, degraded_utilization))
        az_safe = az_count * per_az_needed
        if explain:
            steps.append(
                f"AZ-safe = {az_count} x ceil({fmt(rps)} / (({az_count} - 1) x {fmt(per_instance_rps)} x "
                f"{fmt(degraded_utilization)})) = {az_count} x {per_az_needed} = {az_safe}"
            )
    instances = max(base, az_safe, floor)
    if az_count >= 2 and instances % az_count:
        rounded = instances + az_count - instances % az_count
        if explain:
            steps.append(f"round {instances} up to a multiple of {az_count} AZs = {rounded}")
        instances = rounded
    per_az = spread(instances, az_count)
    return CapacityPlan(rps, base, az_safe, floor, instances, per_az, steps)


@dataclass(frozen=True, slots=True)
class ScalingTarget:
    """The per-instance load the policies aim at, and the fleet it settles at for any load.

    ``per_minute`` is the emitted TargetValue (invocations per instance per minute, rounded down
    to 2 decimals so that rounding never loosens the guarantee).
    """

    per_minute: float
    min_instances: int
    steps: tuple[str, ...]

    @property
    def per_instance_rps(self) -> float:
        return self.per_minute / 60

    def instances_for(self, rps: float) -> int:
        """n(L) = max(min, ceil(L / target per instance)): where target tracking settles at load L."""
        return max(self.min_instances, ceil_div(rps * 60, self.per_minute))


def worst_az_share(min_instances: int, max_instances: int, az_count: int) -> tuple[int, int]:
    """The fleet size in [min, max] that keeps the smallest share after losing its largest AZ.

    Returns (n, kept): kept = n - ceil(n/k) of the n remain. A fleet of n spread over k AZs keeps
    n - ceil(n/k) when the largest AZ goes. Within a block of k sizes the share falls as n grows
    past a multiple of k, and the first size past each multiple (n = qk + 1) keeps less as q
    falls; so the worst is n = min or the first qk + 1 above it. Closed form, because max can be
    large.
    """
    k = az_count

    def kept(n: int) -> int:
        return n - -(-n // k)

    worst = min_instances
    first_odd = min_instances + (1 - min_instances) % k
    if first_odd == min_instances:
        first_odd += k
    # kept(a)/a < kept(b)/b, compared in integers
    if first_odd <= max_instances and kept(first_odd) * worst < kept(worst) * first_odd:
        worst = first_odd
    return worst, kept(worst)


def _per_minute(r: float, factor: float, *exact_factors: float | Fraction) -> float:
    """floor(r x factor x 60) to the cent, exact where floats sit too close to a cent to tell.

    Below one cent a minute (a rate of a few requests an hour) the floor is taken to the millionth
    instead, so the target never rounds down to zero.
    """
    for scale in (100, 1_000_000):
        units = r * factor * 60 * scale
        nearest = round(units)
        if abs(units - nearest) > 1e-6 * max(1.0, units):
            floored = math.floor(units)
        else:
            value = exact(r) * 60 * scale
            for f in exact_factors:
                value *= f if isinstance(f, Fraction) else exact(f)
            floored = math.floor(value)
        if floored > 0:
            return floored / scale
    return 1 / 1_000_000  # unreachable for rates the contract admits (>= 0.001 rps x 0.1 x 1/3)


def scaling_target(
    *,
    per_instance_rps: float,
    target_utilization: float,
    az_count: int,
    survives_az_loss: bool,
    degraded_utilization: float,
    min_instances: int,
    max_instances: int,
) -> ScalingTarget:
    """Target per instance: the planned utilisation, lowered where the plan must survive an AZ loss.

    With n(L) = max(min, ceil(L / t)) instances over k AZs, the n - ceil(n/k) left after losing
    the largest AZ carry L at the degraded utilisation d for every load up to max when
    t = r x min(u, d x min over n of (n - ceil(n/k)) / n). The emitted TargetValue is t x 60
    rounded down to the cent, so rounding never loosens the guarantee.
    """
    r, u = per_instance_rps, target_utilization
    per_minute = _per_minute(r, u, u)
    steps = [f"target per instance at the planned utilisation = {fmt(r)} x {fmt(u)} = {fmt(r * u)} rps"]
    if survives_az_loss and az_count >= 2:
        n, kept = worst_az_share(min_instances, max_instances, az_count)
        d = degraded_utilization
        share = d * kept / n
        if share < u:
            per_minute = min(per_minute, _per_minute(r, share, d, Fraction(kept, n)))
        steps.append(
            f"AZ-safe target = r x d x min over n in [{min_instances}, {max_instances}] of (n - ceil(n/{az_count}))/n "
            f"= {fmt(r)} x {fmt(d)} x {kept}/{n} = {fmt(r * share)} rps (worst case n = {n}: {kept} instances "
            f"left after losing an AZ of {n - kept})"
        )
    steps.append(
        f"TargetValue = {fmt(per_minute / 60)} rps x 60 = {fmt(per_minute)} invocations per instance per minute "
        "(rounded down to the cent)"
    )
    return ScalingTarget(per_minute, min_instances, tuple(steps))
