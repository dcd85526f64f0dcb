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

__all__ = ["CapacityPlan", "ceil_div", "exact", "fmt", "plan_capacity", "spread"]


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

    @property
    def formula(self) -> str:
        parts = [f"base {self.base}"]
        if self.az_safe:
            parts.append(f"AZ-safe {self.az_safe}")
        parts.append(f"floor {self.floor}")
        layout = " + ".join(str(n) for n in self.per_az)
        return f"instances = max({', '.join(parts)}) = {self.instances} ({layout} across AZs)"


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
