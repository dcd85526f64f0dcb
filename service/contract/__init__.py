"""The advisor's public contract: the workload profile it takes and the recommendation it gives.

Field names here are part of the API: add fields freely (with defaults), rename none.
"""

from service.contract.aws import (
    MetricAlarm,
    RegisterScalableTarget,
    ScalingPolicy,
    ScheduledAction,
)
from service.contract.profile import (
    PeakWindow,
    Sla,
    Traffic,
    Workload,
    WorkloadProfile,
)
from service.contract.recommendation import (
    Alternative,
    AvailabilityPlan,
    AwsScaling,
    Capacity,
    CostEstimate,
    ExplanationEntry,
    InstanceChoice,
    Monitoring,
    MonitoringRationale,
    MonitoringTool,
    Recommendation,
    RulesetRef,
    ScalingPlan,
    UnavailableMethod,
    Warning,
)
from service.contract.whatif import WhatIf, WhatIfReport

__all__ = [
    "Alternative",
    "AvailabilityPlan",
    "AwsScaling",
    "Capacity",
    "CostEstimate",
    "ExplanationEntry",
    "InstanceChoice",
    "MetricAlarm",
    "Monitoring",
    "MonitoringRationale",
    "MonitoringTool",
    "PeakWindow",
    "Recommendation",
    "RegisterScalableTarget",
    "RulesetRef",
    "ScalingPlan",
    "ScalingPolicy",
    "ScheduledAction",
    "Sla",
    "Traffic",
    "UnavailableMethod",
    "Warning",
    "WhatIf",
    "WhatIfReport",
    "Workload",
    "WorkloadProfile",
]
