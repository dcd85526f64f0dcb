"""The request body: a workload profile.

Every bound below is deliberate: inputs come from other programs, and a value outside these
ranges is a mistake to report (422), not a number to compute with. JSON has no NaN or
Infinity, and the upper bounds reject values such as 1e308.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.contract.llm import LlmWorkload

__all__ = [
    "INSTANCE_TYPE_PATTERN",
    "Bound",
    "Burstiness",
    "Delivery",
    "LoadTest",
    "ModelKind",
    "PeakWindow",
    "Priority",
    "Sharding",
    "Sla",
    "Traffic",
    "Workload",
    "WorkloadProfile",
]

Bound = Literal["cpu", "memory", "gpu"]
ModelKind = Literal["classic_ml", "deep_learning", "vision", "llm", "graph"]
Burstiness = Literal["steady", "periodic", "bursty"]
Priority = Literal["latency", "balanced", "cost"]
Sharding = Literal["none", "tensor_parallel"]
LatencyMeasure = Literal["p99", "at_max_invocations"]
Delivery = Literal["sync", "async_ok", "batch"]

# SageMaker instance type names as botocore's ProductionVariantInstanceType spells them (ml.g5.2xlarge).
INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9-]+\.[a-z0-9]+$"
InstanceTypeName = Annotated[
    str, Meta(max_length=40, pattern=INSTANCE_TYPE_PATTERN, description="A SageMaker instance type, e.g. ml.m5.xlarge.")
]

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
    sharding: (
        Annotated[
            Sharding,
            Meta(
                description="How the model is split over accelerator devices: `none` (one device holds it) or "
                "`tensor_parallel` (the devices of one instance share it). Default: tensor_parallel for llm, "
                "none otherwise. A model is never split across instances."
            ),
        ]
        | None
    ) = None
    startup_s: (
        Annotated[
            float,
            Meta(
                ge=1,
                le=7200,
                description="Seconds from a new instance starting to serving (model download, container start, "
                "load). Without it, the rules estimate it from the model size.",
            ),
        ]
        | None
    ) = None
    processing_s: (
        Annotated[
            float,
            Meta(
                ge=0.001,
                le=86_400,
                description="The model's processing time per request, seconds (measured p99). Without it, the "
                "largest p99 of `load_tests` serves. It decides the hosting mode against each mode's limit.",
            ),
        ]
        | None
    ) = None
    payload_kib: (
        Annotated[float, Meta(gt=0, le=16_777_216, description="Request payload size, KiB (largest expected).")] | None
    ) = None
    response_kib: (
        Annotated[float, Meta(gt=0, le=16_777_216, description="Response payload size, KiB (largest expected).")] | None
    ) = None
    llm: (
        Annotated[
            LlmWorkload,
            Meta(
                description="The language model served, in its own units (model_kind llm): architecture, precision, "
                "tokens per request, container. With it the model is sized by weights and KV cache per stream, and "
                "traffic and SLA may be given as concurrency, time to first token and inter-token latency."
            ),
        ]
        | None
    ) = None
    shares_endpoint: Annotated[
        bool,
        Meta(
            description="Whether the model is one of several served from one endpoint's instances, each an "
            "inference component (CreateInferenceComponent) with its own copies. A small CPU model that shares an "
            "endpoint takes copies sized to a fraction of an instance instead of a fleet of its own; the other "
            "models are not planned here. Default false: the model has its endpoint to itself."
        ),
    ] = False


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


class Traffic(_Body, frozen=True, kw_only=True):
    """How much load, and how it arrives."""

    peak_rps: (
        Annotated[
            float,
            Meta(
                ge=0.001,
                le=10_000_000,
                description="Requests per second at the peak. Required unless peak_concurrency is given (LLMs).",
            ),
        ]
        | None
    ) = None
    peak_concurrency: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=10_000_000,
                description="Streams in flight at the peak (LLMs, with workload.llm): an alternative to peak_rps. "
                "Requests per second follow by Little's law with the stream duration.",
            ),
        ]
        | None
    ) = None
    mean_concurrency: (
        Annotated[int, Meta(ge=1, le=10_000_000, description="Mean streams in flight (LLMs), beside mean_rps.")] | None
    ) = None
    per_instance_rps: (
        Annotated[
            float,
            Meta(
                ge=0.001,
                le=1_000_000,
                description="Requests per second one instance sustains within the latency SLA (load-tested). "
                "Required unless `load_tests` is given, or the model is an LLM described by workload.llm.",
            ),
        ]
        | None
    ) = None
    burstiness: Annotated[Burstiness, Meta(description="Shape of the load over time.")]
    tested_instance_type: (
        Annotated[
            InstanceTypeName,
            Meta(description="The instance type `per_instance_rps` was load-tested on (a catalog type)."),
        ]
        | None
    ) = None
    mean_rps: Rps | None = None
    peak_windows: Annotated[list[PeakWindow], Meta(max_length=24)] | None = None

    @property
    def rps_at_peak(self) -> float:
        """peak_rps, which the engine derives from peak_concurrency (Little's law) before it sizes anything."""
        if self.peak_rps is None:
            raise ValueError("traffic.peak_rps is derived from peak_concurrency before sizing")
        return self.peak_rps


class LoadTest(_Body, frozen=True):
    """One load test: the rate one instance of a type sustained, and the latency it saw."""

    instance_type: InstanceTypeName
    per_instance_rps: (
        Annotated[
            float,
            Meta(
                ge=0.001,
                le=1_000_000,
                description="Requests per second one instance sustained. Required unless the test measured an LLM's "
                "max_concurrency and output_tokens_per_s.",
            ),
        ]
        | None
    ) = None
    max_concurrency: (
        Annotated[
            int,
            Meta(ge=1, le=1_000_000, description="Streams in flight one instance served within the SLA (LLMs)."),
        ]
        | None
    ) = None
    output_tokens_per_s: (
        Annotated[
            float,
            Meta(
                ge=0.001,
                le=100_000_000,
                description="Output tokens per second one instance generated at max_concurrency (LLMs).",
            ),
        ]
        | None
    ) = None
    p99_latency_ms: (
        Annotated[float, Meta(ge=0.001, le=3_600_000, description="Latency measured at that rate, ms.")] | None
    ) = None
    latency_measure: Annotated[
        LatencyMeasure,
        Meta(
            description="What p99_latency_ms is: `p99` of the test, or `at_max_invocations` (Inference "
            "Recommender's ModelLatency at the maximum rate, not a percentile)."
        ),
    ] = "p99"
    environment: (
        Annotated[
            dict[Annotated[str, Meta(max_length=128)], Annotated[str, Meta(max_length=1024)]],
            Meta(
                max_length=32,
                description="Container environment the rate was measured with (e.g. Inference Recommender's "
                "tuned EnvironmentParameters); the rate holds only with it.",
            ),
        ]
        | None
    ) = None
    source: Annotated[str, Meta(max_length=200, description="Where the figures come from.")] | None = None

    @property
    def rps(self) -> float:
        """per_instance_rps, which the engine derives from an LLM test's concurrency before it sizes anything."""
        if self.per_instance_rps is None:
            raise ValueError("load_tests[].per_instance_rps is derived from max_concurrency before sizing")
        return self.per_instance_rps


class Sla(_Body, frozen=True, kw_only=True):
    """Service-level objectives."""

    p99_latency_ms: (
        Annotated[
            float,
            Meta(
                ge=0.001,
                le=3_600_000,
                description="p99 latency objective, ms. For an LLM, ttft_p99_ms and itl_p99_ms may replace it.",
            ),
        ]
        | None
    ) = None
    ttft_p99_ms: (
        Annotated[float, Meta(ge=0.001, le=3_600_000, description="p99 time to first token objective, ms (LLMs).")]
        | None
    ) = None
    itl_p99_ms: (
        Annotated[
            float, Meta(ge=0.001, le=60_000, description="p99 inter-token latency objective, ms per token (LLMs).")
        ]
        | None
    ) = None
    availability: Annotated[float, Meta(gt=0, lt=1, description="Availability objective as a fraction, e.g. 0.999.")]
    delivery: Annotated[
        Delivery,
        Meta(
            description="How answers reach the caller: `sync` (the caller waits for the response), `async_ok` "
            "(the caller can poll S3 or be notified), `batch` (offline datasets in S3)."
        ),
    ] = "sync"
    cold_start_ok: Annotated[
        bool,
        Meta(description="Whether a request may wait for a cold start (seconds to minutes) after idle periods."),
    ] = False

    @property
    def latency_ms(self) -> float:
        """p99_latency_ms, which the engine derives from the TTFT and ITL objectives before it sizes anything."""
        if self.p99_latency_ms is None:
            raise ValueError("sla.p99_latency_ms is derived from ttft_p99_ms and itl_p99_ms before sizing")
        return self.p99_latency_ms


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
    region: Annotated[
        str,
        Meta(
            max_length=32,
            pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
            description="The AWS Region the endpoint runs in (e.g. eu-west-1). Costs are priced only in the "
            "catalog's Region; in another one the cost says prices_known false.",
        ),
    ] = "us-east-1"
    load_tests: (
        Annotated[
            list[LoadTest],
            Meta(
                max_length=50,
                description="Load tests on one or more instance types; with them `traffic.per_instance_rps` "
                "may be omitted. Candidates are ranked by cost per million requests.",
            ),
        ]
        | None
    ) = None
