"""The parts of an answer that a hosting mode reshapes (shared by the modes' modules)."""

from __future__ import annotations

from dataclasses import dataclass

from service.contract import AvailabilityPlan, Capacity, CostEstimate, Monitoring, ScalingPlan
from service.contract.recommendation import Hosting

__all__ = ["INSTANCE_METRICS", "Parts"]

# Alarms on one instance's metrics: meaningless without instances of one's own (serverless, shared instances).
INSTANCE_METRICS = frozenset({"CPUUtilization", "GPUUtilization", "MemoryUtilization", "InvocationsPerInstance"})


@dataclass(frozen=True, slots=True)
class Parts:
    hosting: Hosting
    capacity: Capacity | None
    scaling: ScalingPlan | None
    availability: AvailabilityPlan
    monitoring: Monitoring
    cost: CostEstimate
