"""LLM serving in its own units: the ``workload.llm`` block of a profile and the ``llm`` block of an answer.

A large language model is described by its architecture (an id from ``rules/models.yaml``, or its
parameter count with the few dimensions the KV cache needs), the precision of its weights and KV
cache, and the tokens of a mean request. Its load is streams in flight (``traffic.peak_concurrency``)
and its objectives are time to first token and inter-token latency (``sla.ttft_p99_ms``,
``sla.itl_p99_ms``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = ["LlmAnswer", "LlmContainer", "LlmPrecision", "LlmWorkload"]

LlmPrecision = Literal["bf16", "fp16", "fp8", "int8", "int4"]
KvPrecision = Literal["bf16", "fp16", "fp8"]
LlmContainer = Literal["lmi", "tgi", "vllm"]

_Tokens = Annotated[int, Meta(ge=1, le=10_000_000)]


class LlmWorkload(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The model served, when ``workload.model_kind`` is ``llm``: give ``model`` or ``parameters_b``."""

    model: (
        Annotated[
            str,
            Meta(
                max_length=64,
                pattern=r"^[a-z0-9][a-z0-9.-]{1,62}$",
                description="A model id from the ruleset's models.yaml (e.g. llama-3.1-70b): its layers, heads, KV "
                "heads, FFN size, vocabulary and maximum context come from its published config.json.",
            ),
        ]
        | None
    ) = None
    parameters_b: (
        Annotated[
            float,
            Meta(gt=0, le=5000, description="Parameters, billions, for a model not in models.yaml (all experts)."),
        ]
        | None
    ) = None
    layers: Annotated[int, Meta(ge=1, le=1000, description="Decoder layers (with parameters_b).")] | None = None
    kv_heads: Annotated[int, Meta(ge=1, le=10_000, description="Key/value heads (with parameters_b).")] | None = None
    head_dim: Annotated[int, Meta(ge=1, le=10_000, description="Head dimension (with parameters_b).")] | None = None
    precision: Annotated[
        LlmPrecision,
        Meta(
            description="Precision of the weights as served: bf16/fp16 2 bytes a parameter, fp8/int8 1, int4 0.5. "
            "The accelerator must run it (a catalog column)."
        ),
    ] = "bf16"
    kv_cache_precision: Annotated[
        KvPrecision, Meta(description="Precision of the KV cache: bf16/fp16 2 bytes an element, fp8 1.")
    ] = "bf16"
    context_tokens: Annotated[
        int,
        Meta(
            ge=1,
            le=10_000_000,
            description="The longest sequence a request may reach (input + output), tokens: the container's "
            "maximum model length.",
        ),
    ]
    input_tokens: Annotated[int, Meta(ge=1, le=10_000_000, description="Mean input tokens per request.")]
    output_tokens: Annotated[int, Meta(ge=1, le=10_000_000, description="Mean output tokens per request.")]
    container: Annotated[
        LlmContainer,
        Meta(
            description="Serving container: `lmi` (SageMaker Large Model Inference, DJL Serving), `tgi` (Hugging "
            "Face Text Generation Inference) or `vllm`; decides the names of the container settings."
        ),
    ] = "lmi"


class LlmAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """What an LLM needs on the chosen type, in its own units."""

    model: str | None
    precision: LlmPrecision
    parameters_b: float
    weights_gib: Annotated[float, Meta(description="Parameters x bytes per parameter of the precision, GiB.")]
    kv_cache_gib_per_stream: Annotated[
        float,
        Meta(
            description="2 x layers x KV heads x head dimension x KV bytes x tokens per stream (input + output, "
            "capped by context_tokens and any sliding window), GiB."
        ),
    ]
    tokens_per_stream: int
    tensor_parallel_degree: int
    copies_per_instance: Annotated[int, Meta(description="Model copies on one instance: devices / TP degree.")]
    max_streams_per_instance: Annotated[
        int, Meta(description="Streams whose KV cache fits beside the weights (memory fit: an upper bound).")
    ]
    streams_per_instance: Annotated[int, Meta(description="Streams one instance serves within the TTFT/ITL SLA.")]
    sla_streams_per_instance: int
    streams_basis: Literal["load_test", "roofline"]
    stream_duration_s: Annotated[float, Meta(description="TTFT + output tokens x ITL: one stream's duration, s.")]
    container: LlmContainer
    container_env: dict[str, str]
    steps: list[str]
