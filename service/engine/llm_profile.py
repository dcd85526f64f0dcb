"""An LLM profile in its own units, made ready for sizing: architecture, stream duration, rates by Little's law.

``prepare`` runs first in every decision. A profile without ``workload.llm`` must give requests per
second and a p99 latency as before (a 422 names what is missing). With ``workload.llm`` the model's
architecture comes from ``rules/models.yaml`` (or ``parameters_b`` with layers, KV heads and head
dimension); one stream lasts TTFT + output tokens x ITL (the SLA's p99 bounds, else its p99 latency);
and the request rates the rest of the engine works in follow from concurrency by Little's law:
requests per second = streams in flight / stream duration.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

import msgspec

from service.contract import WorkloadProfile
from service.contract.llm import LlmWorkload
from service.contract.profile import LoadTest
from service.engine.capacity import fmt
from service.engine.compiled import CompiledRuleset
from service.engine.errors import ProfileRejected

__all__ = ["GIB", "KV_BYTES", "WEIGHT_BYTES", "LlmArchitecture", "LlmInputs", "prepare"]

GIB = 1024**3
# Bytes per parameter of the weights (LMI instance-type selection guide: fp16/bf16 2, int8/fp8 1; 4-bit
# AWQ/GPTQ half a byte, before its scales) and per element of the KV cache.
WEIGHT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
KV_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}
# Weights as given in model_memory_gib may differ from the computed size by this much before a warning.
MEMORY_MISMATCH = 0.20
MAX_RPS = 10_000_000  # the largest traffic.peak_rps a profile may state (service/contract/profile.py)


@dataclass(frozen=True, slots=True)
class LlmArchitecture:
    model_id: str | None
    parameters: float  # all of them (every expert of a mixture of experts)
    active_parameters: float  # used per token: prefill compute
    layers: int
    attention_heads: int | None
    kv_heads: int
    head_dim: int
    max_context: int | None
    sliding_window: int | None

    def kv_bytes_per_token(self, kv_precision: str) -> float:
        return 2 * self.layers * self.kv_heads * self.head_dim * KV_BYTES[kv_precision]


@dataclass(frozen=True, slots=True)
class LlmInputs:
    """What LLM sizing starts from; ``steps`` and ``notes`` (warnings) explain how it got there."""

    llm: LlmWorkload
    arch: LlmArchitecture
    ttft_s: float
    itl_s: float
    duration_s: float
    peak_concurrency: float
    weights_gib: float
    tokens_per_stream: int
    kv_gib_per_stream: float
    steps: tuple[str, ...]
    notes: tuple[str, ...]
    one_device: bool = False  # workload.sharding none: each copy on one device, tensor-parallel degree 1


def prepare(profile: WorkloadProfile, ruleset: CompiledRuleset) -> tuple[WorkloadProfile, LlmInputs | None]:
    """The profile with requests per second filled in, and the LLM inputs (None for other models)."""
    llm = profile.workload.llm
    if llm is None:
        _require_request_units(profile)
        return profile, None
    if profile.workload.model_kind != "llm":
        raise ProfileRejected(
            "llm-block-needs-llm-kind",
            f"workload.llm describes a language model, but workload.model_kind is {profile.workload.model_kind}.",
            "workload.model_kind",
        )
    if profile.traffic.per_instance_rps is not None or profile.traffic.tested_instance_type is not None:
        raise ProfileRejected(
            "llm-rate-in-requests",
            "with workload.llm an instance's capacity is streams, not requests per second: give load_tests[] with "
            "instance_type and max_concurrency (streams it served within the TTFT/ITL objectives) instead of "
            "traffic.per_instance_rps.",
            "traffic.per_instance_rps",
        )
    arch = _architecture(llm, ruleset)
    ttft_s, itl_s, duration_s, timing = _stream_timing(profile, llm)
    t = profile.traffic
    peak_conc, peak_rps, rate_step = _peak(profile, duration_s)
    mean_rps = t.mean_concurrency / duration_s if t.mean_concurrency is not None else t.mean_rps
    if peak_rps > MAX_RPS:
        raise ProfileRejected(
            "peak-out-of-range",
            f"{fmt(round(peak_rps))} requests per second ({rate_step}) is above the {fmt(MAX_RPS)} a profile may "
            "state: check traffic.peak_concurrency and the latency objectives.",
            "traffic.peak_concurrency",
        )
    tokens = _tokens_per_stream(llm, arch)
    weights = arch.parameters * WEIGHT_BYTES[llm.precision] / GIB
    kv = arch.kv_bytes_per_token(llm.kv_cache_precision) * tokens / GIB
    notes = _memory_note(profile, weights)
    steps = (
        f"weights = {fmt(arch.parameters / 1e9)}B parameters x {fmt(WEIGHT_BYTES[llm.precision])} bytes "
        f"({llm.precision}) = {fmt(round(weights, 2))} GiB",
        f"KV cache per stream = 2 x {arch.layers} layers x {arch.kv_heads} KV heads x {arch.head_dim} head dim x "
        f"{fmt(KV_BYTES[llm.kv_cache_precision])} bytes ({llm.kv_cache_precision}) x {tokens} tokens = "
        f"{fmt(round(kv, 3))} GiB",
        timing,
        rate_step,
    )
    sla = profile.sla
    sized = msgspec.structs.replace(
        profile,
        workload=msgspec.structs.replace(profile.workload, model_memory_gib=weights),
        traffic=msgspec.structs.replace(t, peak_rps=peak_rps, mean_rps=mean_rps, per_instance_rps=None),
        sla=msgspec.structs.replace(sla, p99_latency_ms=sla.p99_latency_ms or duration_s * 1000),
        load_tests=[_as_rate(test, duration_s, i) for i, test in enumerate(profile.load_tests or ())] or None,
    )
    one_device = profile.workload.sharding == "none"
    inputs = LlmInputs(llm, arch, ttft_s, itl_s, duration_s, peak_conc, weights, tokens, kv, steps, notes, one_device)
    return sized, inputs


def _require_request_units(profile: WorkloadProfile) -> None:
    """Without workload.llm the LLM units have nothing to convert them: requests per second and a p99 are needed."""
    t, s = profile.traffic, profile.sla
    llm_only = [
        ("traffic.peak_concurrency", t.peak_concurrency),
        ("traffic.mean_concurrency", t.mean_concurrency),
        ("sla.ttft_p99_ms", s.ttft_p99_ms),
        ("sla.itl_p99_ms", s.itl_p99_ms),
    ]
    for field, value in llm_only:
        if value is not None:
            raise ProfileRejected(
                "llm-units-need-workload-llm",
                f"{field} is given in LLM units, which need workload.llm (the model, its precision and tokens per "
                "request) to convert them.",
                field,
            )
    if t.peak_rps is None:
        raise ProfileRejected("peak-required", "traffic.peak_rps is required.", "traffic.peak_rps")
    if s.p99_latency_ms is None:
        raise ProfileRejected("latency-objective-required", "sla.p99_latency_ms is required.", "sla.p99_latency_ms")
    for i, test in enumerate(profile.load_tests or ()):
        if test.per_instance_rps is None:
            raise ProfileRejected(
                "load-test-rate-required",
                f"load_tests[{i}].per_instance_rps is required (max_concurrency stands in for it only with "
                "workload.llm).",
                f"load_tests[{i}].per_instance_rps",
            )


def _architecture(llm: LlmWorkload, ruleset: CompiledRuleset) -> LlmArchitecture:
    if llm.model is not None and llm.parameters_b is not None:
        raise ProfileRejected(
            "llm-model-ambiguous",
            "give workload.llm.model (an id from models.yaml) or workload.llm.parameters_b, not both.",
            "workload.llm.parameters_b",
        )
    if llm.model is not None:
        known = ruleset.source.models.by_id()
        m = known.get(llm.model)
        if m is None:
            close = difflib.get_close_matches(llm.model, list(known), n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(sorted(known)) or 'none'}"
            raise ProfileRejected(
                "unknown-model",
                f"workload.llm.model '{llm.model}' is not in models.yaml of ruleset {ruleset.version}{hint}. Give "
                "parameters_b with layers, kv_heads and head_dim instead.",
                "workload.llm.model",
            )
        count = float(m.parameter_count())
        active = count
        if m.num_local_experts and m.num_experts_per_tok:
            ffn = 3 * m.hidden_size * m.intermediate_size * m.num_hidden_layers
            active = count - ffn * (m.num_local_experts - m.num_experts_per_tok)
        return LlmArchitecture(
            m.id,
            count,
            active,
            m.num_hidden_layers,
            m.num_attention_heads,
            m.num_key_value_heads,
            m.head_dimension,
            m.max_position_embeddings,
            m.sliding_window,
        )
    missing = [
        f"workload.llm.{name}"
        for name, value in (("layers", llm.layers), ("kv_heads", llm.kv_heads), ("head_dim", llm.head_dim))
        if value is None
    ]
    if llm.parameters_b is None or missing:
        raise ProfileRejected(
            "llm-architecture-required",
            "the KV cache per token is 2 x layers x KV heads x head dimension x bytes: give workload.llm.model (an "
            "id from models.yaml) or parameters_b with layers, kv_heads and head_dim"
            + (f" (missing: {', '.join(missing)})" if llm.parameters_b is not None else "")
            + ".",
            missing[0] if llm.parameters_b is not None else "workload.llm.model",
        )
    assert llm.layers is not None and llm.kv_heads is not None and llm.head_dim is not None
    count = llm.parameters_b * 1e9
    return LlmArchitecture(None, count, count, llm.layers, None, llm.kv_heads, llm.head_dim, None, None)


def _stream_timing(profile: WorkloadProfile, llm: LlmWorkload) -> tuple[float, float, float, str]:
    """TTFT, ITL and one stream's duration (s), from the SLA's token objectives or its p99 latency."""
    s = profile.sla
    if s.ttft_p99_ms is not None and s.itl_p99_ms is not None:
        ttft, itl = s.ttft_p99_ms / 1000, s.itl_p99_ms / 1000
        duration = ttft + llm.output_tokens * itl
        how = (
            f"stream duration = TTFT {fmt(s.ttft_p99_ms)} ms + {llm.output_tokens} output tokens x ITL "
            f"{fmt(s.itl_p99_ms)} ms = {fmt(round(duration, 3))} s (the SLA's p99 bounds: the longest a stream may "
            "take, so rates derived from it are lower bounds)"
        )
        return ttft, itl, duration, how
    if s.p99_latency_ms is None or s.ttft_p99_ms is not None or s.itl_p99_ms is not None:
        missing = [f for f, v in (("sla.ttft_p99_ms", s.ttft_p99_ms), ("sla.itl_p99_ms", s.itl_p99_ms)) if v is None]
        raise ProfileRejected(
            "llm-latency-objective-required",
            "an LLM's objectives are time to first token and inter-token latency: give both sla.ttft_p99_ms and "
            f"sla.itl_p99_ms, or sla.p99_latency_ms for whole generations (missing: {', '.join(missing)}).",
            missing[0],
        )
    duration = s.p99_latency_ms / 1000
    itl = duration / llm.output_tokens
    how = (
        f"stream duration = sla.p99_latency_ms {fmt(s.p99_latency_ms)} ms for a whole generation; ITL taken as "
        f"{fmt(round(itl * 1000, 3))} ms = the duration / {llm.output_tokens} output tokens (no TTFT/ITL objectives "
        "given)"
    )
    return 0.0, itl, duration, how


def _peak(profile: WorkloadProfile, duration_s: float) -> tuple[float, float, str]:
    """Peak streams in flight and requests per second, one from the other by Little's law (L = lambda x W)."""
    t = profile.traffic
    derived = t.peak_concurrency / duration_s if t.peak_concurrency is not None else None
    if derived is not None and t.peak_rps is not None and not math.isclose(t.peak_rps, derived, rel_tol=1e-9):
        raise ProfileRejected(
            "peak-ambiguous",
            "give traffic.peak_concurrency or traffic.peak_rps, not both: one follows from the other by Little's "
            "law with the stream duration (a profile that gives both must give them in that ratio).",
            "traffic.peak_rps",
        )
    if t.peak_concurrency is not None:
        rps = t.peak_concurrency / duration_s
        return (
            float(t.peak_concurrency),
            rps,
            f"Little's law: peak {t.peak_concurrency} streams / {fmt(round(duration_s, 3))} s per stream = "
            f"{fmt(round(rps, 4))} requests per second (for cost per million requests and the request-rate views)",
        )
    if t.peak_rps is None:
        raise ProfileRejected(
            "peak-required",
            "give traffic.peak_concurrency (streams in flight at the peak) or traffic.peak_rps.",
            "traffic.peak_concurrency",
        )
    conc = t.peak_rps * duration_s
    return (
        conc,
        t.peak_rps,
        f"Little's law: peak {fmt(t.peak_rps)} rps x {fmt(round(duration_s, 3))} s per stream = "
        f"{fmt(round(conc, 2))} streams in flight",
    )


def _tokens_per_stream(llm: LlmWorkload, arch: LlmArchitecture) -> int:
    """Input + output tokens, capped by the context and any sliding window (the cache holds at most the window)."""
    if arch.max_context is not None and llm.context_tokens > arch.max_context:
        raise ProfileRejected(
            "context-too-long",
            f"workload.llm.context_tokens {llm.context_tokens} is above the model's maximum context "
            f"{arch.max_context} (max_position_embeddings in its config.json).",
            "workload.llm.context_tokens",
        )
    if llm.input_tokens + llm.output_tokens > llm.context_tokens:
        raise ProfileRejected(
            "tokens-exceed-context",
            f"workload.llm.input_tokens {llm.input_tokens} + output_tokens {llm.output_tokens} exceed context_tokens "
            f"{llm.context_tokens}: the mean request must fit the longest one the container accepts.",
            "workload.llm.context_tokens",
        )
    caps = [llm.context_tokens] + ([arch.sliding_window] if arch.sliding_window else [])
    return min(llm.input_tokens + llm.output_tokens, *caps)


def _memory_note(profile: WorkloadProfile, weights_gib: float) -> tuple[str, ...]:
    given = profile.workload.model_memory_gib
    if given is None or abs(given - weights_gib) <= MEMORY_MISMATCH * weights_gib:
        return ()
    return (
        f"workload.model_memory_gib {fmt(given)} GiB differs from the {fmt(round(weights_gib, 2))} GiB the "
        f"architecture and precision give by more than {fmt(MEMORY_MISMATCH * 100)} %: the computed size is used "
        "for the LLM fit; check the precision or the checkpoint.",
    )


def _as_rate(test: LoadTest, duration_s: float, i: int) -> LoadTest:
    """An LLM load test in requests per second: its streams / the stream duration, when no rate was given."""
    if test.per_instance_rps is not None:
        return test
    if test.max_concurrency is None:
        raise ProfileRejected(
            "load-test-rate-required",
            f"load_tests[{i}] needs max_concurrency (streams one instance served within the SLA) or per_instance_rps.",
            f"load_tests[{i}].max_concurrency",
        )
    return msgspec.structs.replace(test, per_instance_rps=max(0.001, test.max_concurrency / duration_s))
