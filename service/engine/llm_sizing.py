"""LLM sizing per instance type: tensor-parallel degree, copies, streams by memory and by the SLA, the fleet.

On each accelerated type that runs the weights' precision, the tensor-parallel degree is the smallest that
divides the devices (NeuronCores on Inferentia) and the attention and KV heads and holds the weights with
room for one stream's KV cache; the instance then holds devices / degree copies. Streams per instance is
the smaller of the memory fit (KV caches beside the weights in the usable device memory) and what the SLA
allows: the concurrency a load test on the type measured, else a stated roofline — decode reads the weights
and every stream's KV cache once per token, so a copy's batch B keeps ITL while (weights + B x KV) / its
memory bandwidth <= ITL, and prefill at 2 x active parameters FLOPs per token must finish within TTFT.
Types compete on the cost of the fleet that carries the peak concurrency at the target utilisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from service.contract import WorkloadProfile
from service.engine.capacity import fmt
from service.engine.compiled import CompiledRuleset
from service.engine.errors import ProfileRejected
from service.engine.llm_profile import GIB, WEIGHT_BYTES, LlmInputs
from service.engine.selection import Candidate, Fit, Measurement, Selection
from service.rulebook.accelerators import AcceleratorSpec
from service.rulebook.models import CatalogInstance

__all__ = ["USABLE_DEVICE_MEMORY", "LlmPlan", "select_llm_instance", "size_on"]

# Share of device memory the serving engine may take for weights and KV cache: vLLM's default
# gpu_memory_utilization (0.9; vLLM engine arguments), leaving the rest to the CUDA context and activations.
USABLE_DEVICE_MEMORY = 0.9
MAX_ALTERNATIVES = 6


@dataclass(frozen=True, slots=True)
class LlmPlan:
    """How the model is served on one instance of a type."""

    instance: CatalogInstance
    tp_degree: int
    copies: int
    max_streams: int  # memory fit
    sla_streams: int  # what the SLA allows (load test or roofline)
    basis: str  # load_test | roofline
    measured_on: Measurement | None
    steps: tuple[str, ...]

    @property
    def streams(self) -> int:
        return min(self.max_streams, self.sla_streams)


def size_on(
    inst: CatalogInstance, inputs: LlmInputs, ruleset: CompiledRuleset, tests: list[Measurement], host_headroom: float
) -> LlmPlan | str:
    """The plan on ``inst``, or why the model cannot be served there (host memory stages the weights x
    ``host_headroom``, the sizing rule's, beside the OS and the container)."""
    accel = inst.accelerator
    if accel is None:
        return "no accelerator"
    if inst.memory_gib < inputs.weights_gib * host_headroom:
        return (
            f"host memory {fmt(inst.memory_gib)} GiB < {fmt(round(inputs.weights_gib, 1))} GiB of weights x "
            f"{fmt(host_headroom)} to load them beside the OS and the serving container"
        )
    spec = ruleset.catalog.accelerator_spec(accel.name)
    precision = inputs.llm.precision
    if spec is None:
        return f"{accel.name} has no entry in the catalog's accelerators (precisions, bandwidth): not sized for LLMs"
    if precision not in spec.precisions:
        return f"{accel.name} does not run {precision} weights (runs {', '.join(spec.precisions)})"
    if accel.kind == "neuron" and inst.generation[0] == 1:
        return "Inferentia (inf1, NeuronCore-v1) does not serve LLMs; Neuron's LLM libraries target Inferentia2"
    units = accel.count * accel.cores_per_device
    per_unit = accel.memory_gib / accel.cores_per_device * USABLE_DEVICE_MEMORY
    arch = inputs.arch
    heads = [h for h in (arch.attention_heads, arch.kv_heads) if h is not None]
    degrees = [d for d in range(1, units + 1) if units % d == 0 and all(h % d == 0 for h in heads)]
    if inputs.one_device:
        degrees = [d for d in degrees if d <= accel.cores_per_device]  # one device: its NeuronCores at most
    elif inputs.llm.container != "lmi":
        degrees = degrees[-1:]  # TGI and vLLM serve one copy per container: it takes every device it can
    fitting = [d for d in degrees if d * per_unit >= inputs.weights_gib + inputs.kv_gib_per_stream]
    if not fitting:
        largest = max(degrees) if degrees else 1
        return (
            f"too small: {largest} x {fmt(round(per_unit, 2))} GiB usable ({fmt(USABLE_DEVICE_MEMORY)} of "
            f"{accel.name}) < {fmt(round(inputs.weights_gib, 1))} GiB of weights + one stream's "
            f"{fmt(round(inputs.kv_gib_per_stream, 2))} GiB KV cache"
            + (f" (tensor-parallel degree must divide {units} devices and {', '.join(map(str, heads))} heads)")
        )
    plans = [_plan_at(inst, inputs, d, per_unit, spec, tests) for d in fitting]
    return max(plans, key=lambda plan: (plan.streams, -plan.tp_degree))


def _plan_at(
    inst: CatalogInstance,
    inputs: LlmInputs,
    d: int,
    per_unit: float,
    spec: AcceleratorSpec,
    tests: list[Measurement],
) -> LlmPlan:
    """The plan at tensor-parallel degree ``d``: devices / d copies, each with its weights and KV caches."""
    assert inst.accelerator is not None
    units = inst.accelerator.count * inst.accelerator.cores_per_device
    copies = units // d if inputs.llm.container == "lmi" else 1  # LMI runs devices / degree copies
    per_copy_kv = math.floor((d * per_unit - inputs.weights_gib) / inputs.kv_gib_per_stream)
    max_streams = copies * per_copy_kv
    sla_streams, basis, measured, sla_step = _sla_streams(inst, inputs, d, copies, spec, tests)
    steps = (
        f"{inst.type}: tensor-parallel degree {d} (divides its {units} "
        f"{'NeuronCores' if inst.accelerator.kind == 'neuron' else 'GPUs'} and the heads, holds the weights and a "
        f"stream; of those degrees the one serving most streams) -> {copies} cop{'y' if copies == 1 else 'ies'} per "
        "instance",
        f"memory fit: {copies} x floor(({d} x {fmt(round(per_unit, 2))} GiB usable - "
        f"{fmt(round(inputs.weights_gib, 2))} GiB weights) / {fmt(round(inputs.kv_gib_per_stream, 3))} GiB KV per "
        f"stream) = {max_streams} streams per instance (an upper bound)",
        sla_step,
        f"streams per instance = min({max_streams}, {sla_streams}) = {min(max_streams, sla_streams)}",
    )
    return LlmPlan(inst, d, copies, max_streams, sla_streams, basis, measured, steps)


def _sla_streams(
    inst: CatalogInstance, inputs: LlmInputs, d: int, copies: int, spec: AcceleratorSpec, tests: list[Measurement]
) -> tuple[int, str, Measurement | None, str]:
    """Streams per instance within the SLA: a load test's max_concurrency on this type, else the roofline."""
    for m in tests:
        if m.instance.type == inst.type and m.concurrency is not None:
            return m.concurrency, "load_test", m, f"SLA-bound: {m.concurrency} streams load-tested ({m.label})"
    assert inst.accelerator is not None
    share = d / inst.accelerator.cores_per_device  # devices of one copy (a NeuronCore is half an Inferentia2)
    bandwidth = spec.memory_bandwidth_gb_s * 1e9 * share  # bytes/s of one copy's devices
    flops = spec.dense_tflops_16bit * 1e12 * share
    weights_bytes = inputs.weights_gib * GIB
    kv_bytes = inputs.kv_gib_per_stream * GIB
    llm, arch = inputs.llm, inputs.arch
    decode = math.floor((inputs.itl_s * bandwidth - weights_bytes) / kv_bytes)
    prefill_s = 2 * arch.active_parameters * llm.input_tokens / flops
    # Compute per second of a copy at batch B: B / duration prompts of input_tokens plus B / ITL decode tokens.
    per_stream_flops = 2 * arch.active_parameters * (llm.input_tokens / inputs.duration_s + 1 / inputs.itl_s)
    compute = math.floor(flops / per_stream_flops)
    per_copy = min(decode, compute)
    if inputs.ttft_s and prefill_s > inputs.ttft_s:
        per_copy = 0
    step = (
        f"SLA-bound (roofline, assumed): per copy, decode at ITL {fmt(round(inputs.itl_s * 1000, 2))} ms allows "
        f"floor(({fmt(round(inputs.itl_s * 1000, 2))} ms x {fmt(share)} x {fmt(spec.memory_bandwidth_gb_s)} GB/s - "
        f"{fmt(round(weights_bytes / 1e9, 1))} GB weights) / {fmt(round(kv_bytes / 1e9, 3))} GB KV per stream) = "
        f"{decode} streams; compute at {fmt(share)} x {fmt(spec.dense_tflops_16bit)} TFLOPS allows {compute}; a "
        f"{llm.input_tokens}-token prefill takes {fmt(round(prefill_s * 1000, 1))} ms"
        + (f" (TTFT {fmt(round(inputs.ttft_s * 1000))} ms)" if inputs.ttft_s else "")
        + f" -> {copies} x {max(per_copy, 0)} = {copies * max(per_copy, 0)} streams per instance"
    )
    return copies * max(per_copy, 0), "roofline", None, step


def select_llm_instance(
    profile: WorkloadProfile,
    ruleset: CompiledRuleset,
    inputs: LlmInputs,
    tests: list[Measurement],
    fleet_for: Callable[[float], int],
    restrict: tuple[str | None, str, float],
) -> tuple[Selection, LlmPlan]:
    """The type whose fleet carries the peak concurrency for least, and its plan.

    ``restrict`` is the one type allowed (or None), the hosting mode and the sizing rule's host-memory headroom.
    """
    only_type, mode, host_headroom = restrict
    plans: list[tuple[LlmPlan, Candidate]] = []
    rejected: list[tuple[str, str]] = []
    families = ("g", "p", "inf") if profile.priority == "cost" else ("g", "p")
    for family in families:
        for inst in ruleset.by_family.get(family, ()):
            if only_type is not None and inst.type != only_type:
                continue
            if mode not in inst.modes:
                rejected.append((inst.type, f"not offered for {mode} (botocore's instance types for it)"))
                continue
            plan = size_on(inst, inputs, ruleset, tests, host_headroom)
            if isinstance(plan, str):
                rejected.append((inst.type, plan))
            elif plan.streams < 1:
                rejected.append((inst.type, f"fails the SLA: {plan.steps[2]}"))
            else:
                plans.append((plan, _candidate(plan, inputs, fleet_for)))
    if not plans:
        raise _nowhere(inputs, rejected, ruleset)
    plans.sort(key=lambda pc: (pc[1].fleet_usd_per_hour, -pc[0].instance.generation[0], pc[0].instance.type))
    # A measured concurrency outweighs any roofline: with a load test, only load-tested types compete.
    tested = [pc for pc in plans if pc[0].basis == "load_test"]
    untested = [pc[0].instance.type for pc in plans if pc[0].basis != "load_test"] if tested else []
    plans = tested or plans
    plan, chosen = plans[0]
    alternatives = [
        (
            c.instance.type,
            f"costlier plan: {c.fleet} x {c.instance.type} = {fmt(c.fleet_usd_per_hour)} USD/h at "
            f"{p.streams} streams per instance vs {chosen.fleet} x {chosen.instance.type} = "
            f"{fmt(chosen.fleet_usd_per_hour)} USD/h",
        )
        for p, c in plans[1 : MAX_ALTERNATIVES - 2]
    ]
    alternatives += [(t, "not load-tested: its roofline is no match for a measured concurrency") for t in untested][:2]
    alternatives += [(t, why) for t, why in rejected if "run" in why and "weights" in why][:2]
    steps = [
        *inputs.steps,
        f"every type of families {', '.join(families)} that runs {inputs.llm.precision} competes on the cost of the "
        f"fleet carrying the peak streams; {plan.instance.type} costs least"
        + (" of the load-tested ones" if untested else "")
        + " (the family table's choice is not binding for an LLM)",
        *plan.steps,
        f"throughput basis: {plan.streams} streams per instance / "
        f"{fmt(round(inputs.duration_s, 3))} s per stream = {fmt(round(chosen.rps, 4))} rps per instance "
        f"({'load-tested' if plan.basis == 'load_test' else 'roofline, assumed'})",
    ]
    index = ruleset.by_family[plan.instance.family].index(plan.instance)
    return Selection(chosen, index, alternatives[:MAX_ALTERNATIVES], steps), plan


def _candidate(plan: LlmPlan, inputs: LlmInputs, fleet_for: Callable[[float], int]) -> Candidate:
    rate = plan.streams / inputs.duration_s
    sharding = "tensor_parallel" if plan.tp_degree > 1 else "none"
    source = "load_test" if plan.basis == "load_test" else "assumed"
    fit = Fit(True, sharding, plan.tp_degree)
    return Candidate(plan.instance, fit, rate, source, 1.0, plan.measured_on, fleet_for(rate))


def _nowhere(inputs: LlmInputs, rejected: list[tuple[str, str]], ruleset: CompiledRuleset) -> ProfileRejected:
    llm = inputs.llm
    runs = [t for t, why in rejected if "does not run" not in why]
    largest = next((why for t, why in reversed(rejected) if why.startswith("too small")), None)
    lower = [p for p in ("fp8", "int4") if WEIGHT_BYTES[p] < WEIGHT_BYTES[llm.precision]]
    ways = [f"{p} weights: {fmt(round(inputs.arch.parameters * WEIGHT_BYTES[p] / GIB, 1))} GiB" for p in lower]
    ways.append(
        "ml.p5e.48xlarge or ml.p5en.48xlarge (8 x H200 141 GB): in botocore's endpoint instance types but "
        f"not in the catalog of ruleset {ruleset.version}, which has no sourced price for them"
    )
    return ProfileRejected(
        "model-does-not-fit",
        f"{fmt(round(inputs.weights_gib, 1))} GiB of {llm.precision} weights plus "
        f"{fmt(round(inputs.kv_gib_per_stream, 2))} GiB of KV cache per stream fit no instance type that runs "
        f"{llm.precision}"
        + (f" (the largest: {largest})" if largest else "")
        + (f"; {len(rejected) - len(runs)} types do not run {llm.precision}" if len(runs) < len(rejected) else "")
        + f". A model is never split across instances. Ways out: {'; '.join(ways)}.",
        "workload.llm.precision",
    )
