"""The facts a rule may test, with their domains.

Rule conditions name these fields and nothing else, so every condition stays statically
analysable: the linter knows each field's enum values or numeric domain. ``decision.*`` fields
are outcomes of earlier tables; a table may only test the ones decided before it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FIELDS", "HOSTING_MODES", "TABLE_ORDER", "FieldSpec", "TableName", "fields_visible_to"]

TableName = Literal["hosting", "family", "sizing", "scaling", "availability", "deployment", "monitoring", "advisories"]

# Tables run in this order; each sees the decisions of the tables before it.
TABLE_ORDER: tuple[TableName, ...] = (
    "hosting",
    "family",
    "sizing",
    "scaling",
    "availability",
    "deployment",
    "monitoring",
    "advisories",
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One testable fact.

    ``values`` lists an enum's values; numeric fields have ``values=None`` and a domain
    ``(low, high)`` whose ends are excluded or included as ``low_open`` / ``high_open`` say.
    ``optional`` fields may be absent from a profile; a condition on an absent field never matches.
    ``decided_by`` names the table whose outcome the field is, for ``decision.*`` fields.
    """

    name: str
    description: str
    values: tuple[str | bool, ...] | None = None
    low: float = 0.0
    high: float = 1e7
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False
    decided_by: TableName | None = None


_FAMILIES = ("c", "m", "r", "g", "p", "inf")
HOSTING_MODES = ("real_time", "serverless", "asynchronous", "inference_components", "batch_transform")

FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("workload.bound", "Limiting resource.", values=("cpu", "memory", "gpu")),
        FieldSpec(
            "workload.model_kind",
            "Kind of model.",
            values=("classic_ml", "deep_learning", "vision", "llm", "graph"),
        ),
        FieldSpec("workload.model_memory_gib", "Model memory, GiB.", low=0, high=4096, low_open=True, optional=True),
        FieldSpec("workload.pipeline_steps", "Pipeline steps.", low=1, high=100, integer=True),
        FieldSpec(
            "workload.sharding",
            "How accelerators hold the model (default: tensor_parallel for llm, none otherwise).",
            values=("none", "tensor_parallel"),
        ),
        FieldSpec(
            "workload.processing_s",
            "Processing time per request, s: the profile's, else the largest p99 of its load tests.",
            low=0,
            high=86_400,
            low_open=True,
            optional=True,
        ),
        FieldSpec(
            "workload.largest_payload_kib",
            "The larger of the request and response sizes (payload_kib, response_kib), KiB.",
            low=0,
            high=16_777_216,
            low_open=True,
            optional=True,
        ),
        FieldSpec(
            "workload.concurrency_peak",
            "Requests in flight at the peak (Little's law: peak_rps x processing_s).",
            low=0,
            high=1e12,
            low_open=True,
            optional=True,
        ),
        FieldSpec(
            "workload.concurrency_mean",
            "Requests in flight on average (mean_rps, else peak_rps, x processing_s).",
            low=0,
            high=1e12,
            low_open=True,
            optional=True,
        ),
        FieldSpec(
            "workload.shares_endpoint",
            "The model shares an endpoint's instances with other models (inference components).",
            values=(True, False),
        ),
        FieldSpec(
            "traffic.peak_instances",
            "The peak in instances' worth at the stated rate: peak_rps / per_instance_rps (without it, the slowest "
            "load-tested rate).",
            low=0,
            high=1e10,
            low_open=True,
            optional=True,
        ),
        FieldSpec("sla.delivery", "How answers reach the caller.", values=("sync", "async_ok", "batch")),
        FieldSpec("sla.cold_start_ok", "Cold starts acceptable.", values=(True, False)),
        FieldSpec("traffic.peak_rps", "Peak requests/s.", low=0, high=1e7, low_open=True),
        FieldSpec(
            "traffic.per_instance_rps",
            "Requests/s one instance sustains (absent when only load_tests are given).",
            low=0,
            high=1e6,
            low_open=True,
            optional=True,
        ),
        FieldSpec("traffic.mean_rps", "Mean requests/s.", low=0, high=1e7, low_open=True, optional=True),
        FieldSpec(
            "traffic.peak_to_mean",
            "peak_rps / mean_rps (absent without mean_rps).",
            low=0,
            high=1e14,
            low_open=True,
            optional=True,
        ),
        FieldSpec("traffic.burstiness", "Load shape.", values=("steady", "periodic", "bursty")),
        FieldSpec("traffic.peak_window_count", "Known peak windows.", low=0, high=24, integer=True),
        FieldSpec("sla.p99_latency_ms", "p99 latency objective, ms.", low=0, high=3.6e6, low_open=True),
        FieldSpec("sla.availability", "Availability objective.", low=0, high=1, low_open=True, high_open=True),
        FieldSpec("target_utilization", "Planned utilisation.", low=0.1, high=0.95),
        FieldSpec("priority", "What to favour.", values=("latency", "balanced", "cost")),
        FieldSpec("az_count", "Requested AZ count.", low=2, high=6, integer=True, optional=True),
        FieldSpec("decision.hosting_mode", "Chosen hosting mode.", values=HOSTING_MODES, decided_by="hosting"),
        FieldSpec("decision.family", "Chosen family.", values=_FAMILIES, decided_by="family"),
        FieldSpec(
            "decision.scaling_method",
            "Chosen scaling method.",
            values=("target_tracking", "step", "scheduled"),
            decided_by="scaling",
        ),
        FieldSpec("decision.multi_az", "Multi-AZ chosen.", values=(True, False), decided_by="availability"),
        FieldSpec(
            "decision.instances",
            "Final instance count.",
            low=1,
            high=1e7,
            integer=True,
            decided_by="availability",
        ),
        FieldSpec(
            "decision.min_instances",
            "The autoscaling minimum (MinCapacity) of the chosen instance type.",
            low=0,
            high=1e7,
            integer=True,
            decided_by="availability",
        ),
        FieldSpec(
            "decision.accelerator",
            "The chosen type's accelerator: none, nvidia-gpu, neuron (Inferentia2, Trainium) or inf1 (Inferentia1).",
            values=("none", "nvidia-gpu", "neuron", "inf1"),
            decided_by="availability",
        ),
    )
}


def fields_visible_to(table: TableName) -> frozenset[str]:
    """Names of the fields a table may test: the profile and the decisions made before it."""
    earlier = set(TABLE_ORDER[: TABLE_ORDER.index(table)])
    return frozenset(name for name, spec in FIELDS.items() if spec.decided_by is None or spec.decided_by in earlier)
