"""The request body: a workload profile.

Every bound below is deliberate: inputs come from other programs, and a value outside these
ranges is a mistake to report (422), not a number to compute with. JSON has no NaN or
Infinity, and the upper bounds reject values such as 1e308.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "Bound",
    "Burstiness",
    "ModelKind",
    "PeakWindow",
    "Priority",
    "Sla",
    "Traffic",
    "Workload",
    "WorkloadProfile",
]

Bound = Literal["cpu", "memory", "gpu"]
ModelKind = Literal["classic_ml", "deep_learning", "vision", "llm", "graph"]
Burstiness = Literal["steady", "periodic", "bursty"]
Priority = Literal["latency", "balanced", "cost"]

# AWS Application Auto Scaling cron: six fields (minutes hours day-of-month month day-of-week year).
# The pattern checks the shape (six space-separated fields of cron characters); AWS checks the rest.
_CRON_FIELD = r"[0-9A-Za-z*?/,\-#L]+"
AWS_CRON_PATTERN = rf"^cron\({_CRON_FIELD}( {_CRON_FIELD}){{5}}\)$"

# SageMaker endpoint names: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
ENDPOINT_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"

# Positive, with a floor of 0.001: smaller values only make the arithmetic overflow, never a real workload.
Rps = Annotated[float, Meta(ge=0.001, le=10_000_000, description="Requests per second (> 0).")]


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Base for request bodies: unknown fields are rejected so that typos fail loudly."""


class Workload(_Body, frozen=True):
    """What is being served."""

    bound: Annotated[Bound, Meta(description="The resource that limits one instance's throughput.")]
    model_kind: Annotated[ModelKind, Meta(description="Kind of model served.")]
    model_memory_gib: (
        Annotated[
            float,
            Meta(gt=0, le=4096, description="Memory the loaded model needs (GPU memory for GPU models), GiB."),
        ]
        | None
    ) = None
    pipeline_steps: Annotated[
        int, Meta(ge=1, le=100, description="Steps in the inference pipeline (pre/post-processing, models).")
    ] = 1


class PeakWindow(_Body, frozen=True):
    """A known peak: capacity is raised at `cron` and, when given, lowered again at `end_cron`."""

    cron: Annotated[
        str,
        Meta(
            max_length=128,
            pattern=AWS_CRON_PATTERN,
            description="AWS six-field cron in UTC, e.g. cron(0 8 ? * MON-FRI *).",
            examples=["cron(0 8 ? * MON-FRI *)"],
        ),
    ]
    rps: Rps
    end_cron: (
        Annotated[
            str,
            Meta(max_length=128, pattern=AWS_CRON_PATTERN, description="When the peak is over (AWS cron)."),
        ]
        | None
    ) = None


class Traffic(_Body, frozen=True):
    """How much load, and how it arrives."""

    peak_rps: Rps
    per_instance_rps: Annotated[
        float,
        Meta(
            ge=0.001,
            le=1_000_000,
            description="Requests per second one instance sustains within the latency SLA (load-tested).",
        ),
    ]
    burstiness: Annotated[Burstiness, Meta(description="Shape of the load over time.")]
    mean_rps: Rps | None = None
    peak_windows: Annotated[list[PeakWindow], Meta(max_length=24)] | None = None


class Sla(_Body, frozen=True):
    """Service-level objectives."""

    p99_latency_ms: Annotated[float, Meta(ge=0.001, le=3_600_000, description="p99 latency objective, ms.")]
    availability: Annotated[float, Meta(gt=0, lt=1, description="Availability objective as a fraction, e.g. 0.999.")]


class WorkloadProfile(_Body, frozen=True):
    """A workload to advise on."""

    workload: Workload
    traffic: Traffic
    sla: Sla
    name: (
        Annotated[
            str,
            Meta(
                max_length=63,
                pattern=ENDPOINT_NAME_PATTERN,
                description="SageMaker endpoint name used in the emitted AWS payloads.",
            ),
        ]
        | None
    ) = None
    target_utilization: Annotated[
        float, Meta(ge=0.1, le=0.95, description="Share of measured per-instance capacity to plan for.")
    ] = 0.7
    priority: Annotated[Priority, Meta(description="What to favour when rules offer a choice.")] = "balanced"
    az_count: Annotated[int, Meta(ge=2, le=6, description="Availability Zones to spread over.")] | None = None
