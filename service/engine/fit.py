"""How a model fits an instance type as it is served: one device, a tensor-parallel group, or host memory.

With ``sharding: none`` one accelerator device holds the model; with ``tensor_parallel`` the
devices of ONE instance share it (the degree divides the device count, in NeuronCores on
Inferentia); host memory must also hold the weights. A model is never split across instances.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.contract import WorkloadProfile
from service.engine.capacity import fmt
from service.engine.compiled import CompiledRuleset
from service.engine.errors import ProfileRejected
from service.rulebook.models import CatalogInstance, SizingOutcome

__all__ = ["Fit", "accelerator_of", "does_not_fit", "fit_model", "model_sharding"]

# Bytes per weight relative to 16-bit weights, for the ways out of a model that fits nowhere.
_LOWER_PRECISIONS = (("fp8", 0.5), ("int4", 0.25))


@dataclass(frozen=True, slots=True)
class Fit:
    ok: bool
    sharding: str  # none | tensor_parallel | host_memory
    tp_degree: int | None
    why_not: str = ""


def model_sharding(profile: WorkloadProfile) -> str:
    w = profile.workload
    return w.sharding or ("tensor_parallel" if w.model_kind == "llm" else "none")


def fit_model(inst: CatalogInstance, profile: WorkloadProfile, sizing: SizingOutcome, mode: str = "real_time") -> Fit:
    """Whether ``inst`` holds the model as it is served, and with which tensor-parallel degree.

    ``mode`` is the hosting mode: a type the catalog does not allow in it (``modes``) never fits.
    """
    if mode != "serverless" and mode not in inst.modes:
        return Fit(False, "host_memory", None, f"not offered for {mode} (botocore's instance types for it)")
    model = profile.workload.model_memory_gib or 0.0
    need = model * sizing.memory_headroom
    accel = inst.accelerator
    if sizing.fit_on == "memory" or accel is None:
        if inst.memory_gib >= need:
            return Fit(True, "host_memory", None)
        return Fit(False, "host_memory", None, f"too small: {fmt(inst.memory_gib)} GiB of memory < {fmt(need)} GiB")
    if profile.workload.model_kind == "llm" and accel.kind == "neuron" and inst.generation[0] == 1:
        return Fit(
            False,
            "none",
            None,
            "Inferentia (inf1, NeuronCore-v1) does not serve LLMs; Neuron's LLM "
            "libraries target Inferentia2 and Trainium",
        )
    if inst.memory_gib < model * sizing.host_memory_headroom:
        return Fit(
            False,
            "none",
            None,
            f"host memory {fmt(inst.memory_gib)} GiB < {fmt(model)} GiB of weights x "
            f"{fmt(sizing.host_memory_headroom)} to load them beside the OS and the serving container",
        )
    sharding = model_sharding(profile)
    if sharding == "none":
        if accel.memory_gib >= need:
            return Fit(True, "none", 1)
        return Fit(
            False,
            "none",
            None,
            f"too small: one {accel.name} holds {fmt(accel.memory_gib)} GiB < {fmt(need)} GiB, and sharding is none",
        )
    units = accel.count * accel.cores_per_device
    per_unit = accel.memory_gib / accel.cores_per_device
    for degree in (d for d in range(1, units + 1) if units % d == 0):
        if degree * per_unit >= need:
            return Fit(True, "tensor_parallel", degree)
    return Fit(
        False,
        "tensor_parallel",
        None,
        f"too small: its {accel.count} x {accel.name} hold {fmt(accel.count * accel.memory_gib)} GiB < {fmt(need)} GiB",
    )


def does_not_fit(
    profile: WorkloadProfile,
    ruleset: CompiledRuleset,
    family: str,
    sizing: SizingOutcome,
    rejected: list[tuple[str, str]],
) -> ProfileRejected:
    model = profile.workload.model_memory_gib or 0.0
    elsewhere = [
        inst.type
        for inst in sorted(ruleset.instance_types.values(), key=lambda i: i.usd_per_hour)
        if inst.family != family
        and (inst.accelerator is not None) == (sizing.fit_on == "accelerator_memory")
        and fit_model(inst, profile, sizing).ok
    ][:3]
    ways = [f"a larger type of another family: {', '.join(elsewhere)}"] if elsewhere else []
    ways += [
        f"{name} weights: about {fmt(model * share)} GiB if the {fmt(model)} GiB sent are 16-bit weights"
        for name, share in _LOWER_PRECISIONS
    ]
    largest = rejected[-1][1] if rejected else "no type"
    return ProfileRejected(
        "model-does-not-fit",
        f"workload.model_memory_gib {fmt(model)} GiB (as sent), with headroom x{fmt(sizing.memory_headroom)} = "
        f"{fmt(model * sizing.memory_headroom)} GiB, fits no instance type of family '{family}' "
        f"(sharding {model_sharding(profile) if sizing.fit_on == 'accelerator_memory' else 'host memory'}; the "
        f"largest: {largest}). A model is never split across instances. Ways out: {'; '.join(ways)}.",
        "workload.model_memory_gib",
    )


def accelerator_of(instance: CatalogInstance) -> str:
    """The ``decision.accelerator`` fact: Inferentia1 apart from other Neuron devices (its deployments differ)."""
    if instance.accelerator is None:
        return "none"
    return "inf1" if instance.type.startswith("ml.inf1.") else instance.accelerator.kind
