"""rules/catalog.yaml: valid, every type a real SageMaker hosting type, families complete, prices sane,
every row sourced, and the device and storage figures the advisor relies on as their sources give them."""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from itertools import combinations
from pathlib import Path

import botocore.session
import pytest
import yaml

from service.rulebook.models import Catalog, CatalogInstance

CATALOG_FILE = Path(__file__).parents[2] / "rules" / "catalog.yaml"
FAMILIES = ("c", "m", "r", "g", "p", "inf")
ACCELERATOR_KIND = {"g": "nvidia-gpu", "p": "nvidia-gpu", "inf": "neuron"}

# Generations with local NVMe instance storage: SageMaker uses that storage and refuses
# ProductionVariant.VolumeSizeInGB for them. Sources:
# - EC2 DescribeInstanceTypes as generated into Karpenter's instance-type reference (label
#   karpenter.k8s.aws/instance-local-nvme is set for exactly these, unset for inf1, inf2 and p3):
#   https://github.com/aws/karpenter-provider-aws/blob/1d927085dd81a9df9301e613f371dac5b4d16bfe/website/content/en/docs/reference/instance-types.md
# - SageMaker Python SDK volume_size_supported(): false for any family with a "d" and for g5*, g6*,
#   p5* (covering g6e, p5e, p5en) and trn1:
#   https://github.com/aws/sagemaker-python-sdk/blob/a24812666d258d9d19c9a82d0c9385ca0bd3ba01/sagemaker-core/src/sagemaker/core/common_utils.py
# - SageMaker developer guide, "ML instance families with the NVMe-type instance storage include
#   ml.p4d, ml.g4dn, and ml.g5": https://docs.aws.amazon.com/sagemaker/latest/dg/model-train-storage-tips-considerations.html
#   and the endpoint storage page it links: https://docs.aws.amazon.com/sagemaker/latest/dg/host-instance-storage.html
LOCAL_NVME_GENERATIONS = frozenset(
    {"ml.g4dn", "ml.g5", "ml.g6", "ml.g6e", "ml.p4d", "ml.p4de", "ml.p5", "ml.p5e", "ml.p5en"}
)
# Accelerated generations that are EBS-only (no instance-local-nvme label in the same Karpenter
# reference), so VolumeSizeInGB applies. A g, p or inf generation in neither set must be classified
# here before it can join the catalog.
EBS_ONLY_ACCELERATED_GENERATIONS = frozenset({"ml.p3", "ml.inf1", "ml.inf2"})

# Per-device memory (GiB) and model of each GPU generation: what EC2 reports, in GiB (the sizing must
# not count the decimal gigabytes of a GPU's marketing name as gibibytes: a 24 GB A10G holds 22.35 GiB).
# Sources:
# EC2 DescribeInstanceTypes in the Karpenter reference above (instance-gpu-name and
# instance-gpu-memory: T4 16,384 MiB; A100 40,960 / 81,920 MiB; H100 81,920 MiB; H200 144,384 MiB;
# A10G and L4 22,888 MiB = 24 GB; L40S 45,776 MiB = 48 GB), the AWS Batch GPU instance table
# (g4dn 16 GiB, g5 and g6 24 GiB per GPU): https://docs.aws.amazon.com/batch/latest/userguide/gpu-jobs.html
# and NVIDIA's MIG guide (A100 40/80 GB, H100 80 GB, H200 141 GB):
# https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-gpus.html
GPU_BY_GENERATION: dict[str, tuple[str, float]] = {
    "ml.g4dn": ("NVIDIA T4", 16),
    "ml.g5": ("NVIDIA A10G", 22.35),  # 22,888 MiB
    "ml.g6": ("NVIDIA L4", 22.35),  # 22,888 MiB
    "ml.g6e": ("NVIDIA L40S", 44.7),  # 45,776 MiB
    "ml.p4d": ("NVIDIA A100", 40),
    "ml.p4de": ("NVIDIA A100", 80),
    "ml.p5": ("NVIDIA H100", 80),
    "ml.p5e": ("NVIDIA H200", 141),
    "ml.p5en": ("NVIDIA H200", 141),
}

# NeuronCores and device memory (GiB) per chip, from the AWS Neuron architecture docs:
# https://awsdocs-neuron.readthedocs-hosted.com/en/latest/general/arch/neuron-hardware/inferentia2.html
# ("two NeuronCore-v2 cores", "32GiB of high-bandwidth device memory") and
# https://awsdocs-neuron.readthedocs-hosted.com/en/latest/general/arch/neuron-hardware/inferentia.html
# ("four NeuronCore-v1", "8GiB of device DRAM memory").
NEURON_CHIPS: dict[str, tuple[int, float]] = {
    "AWS Inferentia2": (2, 32),
    "AWS Inferentia": (4, 8),
}


def _load_catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(CATALOG_FILE.read_text()))


CATALOG = _load_catalog()
TYPES = [inst.type for inst in CATALOG.instances]
BY_TYPE = {inst.type: inst for inst in CATALOG.instances}
ACCELERATED = [inst.type for inst in CATALOG.instances if inst.accelerator is not None]
CPU_ONLY = [inst.type for inst in CATALOG.instances if inst.accelerator is None]
GPU_TYPES = [i.type for i in CATALOG.instances if i.accelerator is not None and i.accelerator.kind == "nvidia-gpu"]
NEURON_TYPES = [i.type for i in CATALOG.instances if i.accelerator is not None and i.accelerator.kind == "neuron"]


@cache
def _sagemaker_hosting_types() -> frozenset[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)


def _generation(inst: CatalogInstance) -> str:
    """'ml.g5.xlarge' -> 'ml.g5': sizes of one generation are priced on one scale."""
    return inst.type.rsplit(".", 1)[0]


def test_catalog_file_validates() -> None:
    catalog = _load_catalog()
    assert catalog.currency == "USD"
    assert catalog.region == "us-east-1"
    assert catalog.as_of == "2026-11-01"
    assert "not live" in catalog.note


@pytest.mark.parametrize("instance_type", TYPES)
def test_type_is_a_sagemaker_hosting_instance_type(instance_type: str) -> None:
    assert instance_type in _sagemaker_hosting_types(), (
        f"{instance_type} is not in botocore's SageMaker ProductionVariantInstanceType enum"
    )


@pytest.mark.parametrize("instance_type", TYPES)
def test_batch_transform_is_allowed_exactly_where_botocore_allows_transform_jobs(instance_type: str) -> None:
    """`modes` holds batch_transform exactly for the types of botocore's TransformInstanceType (a different list
    from ProductionVariantInstanceType); the endpoint modes stay allowed for every hosting type."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    transform = set(model.shape_for("TransformInstanceType").enum)
    modes = BY_TYPE[instance_type].modes
    assert ("batch_transform" in modes) == (instance_type in transform), (instance_type, modes)
    assert {"real_time", "asynchronous", "inference_components"} <= set(modes)


@pytest.mark.parametrize("instance_type", TYPES)
def test_row_names_its_source(instance_type: str) -> None:
    source = BY_TYPE[instance_type].source
    assert source is not None and source.strip(), f"{instance_type}: say where its figures come from in `source`"


@pytest.mark.parametrize("family", FAMILIES)
def test_family_has_at_least_three_types(family: str) -> None:
    members = [inst.type for inst in CATALOG.instances if inst.family == family]
    assert len(members) >= 3, f"family {family} has only {members}"


@pytest.mark.parametrize("instance_type", TYPES)
def test_accelerator_matches_family(instance_type: str) -> None:
    inst = BY_TYPE[instance_type]
    expected_kind = ACCELERATOR_KIND.get(inst.family)
    if expected_kind is None:
        assert inst.accelerator is None, f"{instance_type}: family {inst.family} has no accelerators"
    else:
        assert inst.accelerator is not None, f"{instance_type}: family {inst.family} needs an accelerator"
        assert inst.accelerator.kind == expected_kind


@pytest.mark.parametrize("instance_type", ACCELERATED)
def test_volume_size_flag_of_an_accelerated_type(instance_type: str) -> None:
    inst = BY_TYPE[instance_type]
    generation = _generation(inst)
    assert generation in LOCAL_NVME_GENERATIONS | EBS_ONLY_ACCELERATED_GENERATIONS, (
        f"{instance_type}: classify {generation} as local NVMe or EBS-only in this test, from its sources"
    )
    expected = generation not in LOCAL_NVME_GENERATIONS
    assert inst.volume_size_supported is expected, (
        f"{instance_type}: volume_size_supported must be {str(expected).lower()}"
        + (" (local NVMe instance storage: SageMaker refuses VolumeSizeInGB)" if not expected else " (EBS only)")
    )


@pytest.mark.parametrize("instance_type", CPU_ONLY)
def test_volume_size_flag_of_a_cpu_type(instance_type: str) -> None:
    """c5d, m5d, r5d and the like carry NVMe instance storage; the others are EBS-only."""
    inst = BY_TYPE[instance_type]
    has_instance_store = "d" in _generation(inst).removeprefix("ml.")
    assert inst.volume_size_supported is not has_instance_store


@pytest.mark.parametrize("instance_type", GPU_TYPES)
def test_gpu_model_and_memory_per_device(instance_type: str) -> None:
    inst = BY_TYPE[instance_type]
    accel = inst.accelerator
    assert accel is not None
    generation = _generation(inst)
    assert generation in GPU_BY_GENERATION, f"{instance_type}: add {generation}'s GPU, with its source, to this test"
    name, memory_gib = GPU_BY_GENERATION[generation]
    assert (accel.name, accel.memory_gib) == (name, memory_gib), (
        f"{instance_type}: expected {name} with {memory_gib} GiB per device"
    )
    assert accel.cores_per_device == 1, f"{instance_type}: a GPU is one tensor-parallel unit"


@pytest.mark.parametrize("instance_type", NEURON_TYPES)
def test_neuron_cores_and_memory_per_chip(instance_type: str) -> None:
    accel = BY_TYPE[instance_type].accelerator
    assert accel is not None
    assert accel.name in NEURON_CHIPS, f"{instance_type}: add {accel.name}, with its source, to this test"
    cores, memory_gib = NEURON_CHIPS[accel.name]
    assert (accel.cores_per_device, accel.memory_gib) == (cores, memory_gib), (
        f"{instance_type}: {accel.name} has {cores} NeuronCores and {memory_gib} GiB per chip"
    )


def test_types_are_grouped_by_family_in_order() -> None:
    order = [inst.family for inst in CATALOG.instances]
    blocks = [family for i, family in enumerate(order) if i == 0 or order[i - 1] != family]
    assert blocks == [f for f in FAMILIES if f in order], "keep each family in one block, ordered c, m, r, g, p, inf"


def _generations() -> dict[str, list[CatalogInstance]]:
    by_generation: dict[str, list[CatalogInstance]] = defaultdict(list)
    for inst in CATALOG.instances:
        by_generation[_generation(inst)].append(inst)
    return dict(by_generation)


def _resources(inst: CatalogInstance) -> tuple[float, float, float]:
    """vCPUs, memory and accelerator devices: what a size gives."""
    return inst.vcpus, inst.memory_gib, inst.accelerator.count if inst.accelerator else 0


def _larger(big: CatalogInstance, small: CatalogInstance) -> bool:
    """At least as much of everything and more of something. ml.g5.16xlarge (64 vCPU, 1 GPU) is not
    larger than ml.g5.12xlarge (48 vCPU, 4 GPUs), and AWS prices it lower."""
    b, s = _resources(big), _resources(small)
    return all(x >= y for x, y in zip(b, s, strict=True)) and b != s


@pytest.mark.parametrize("generation", sorted(_generations()))
def test_larger_size_never_costs_less(generation: str) -> None:
    cheaper_but_larger = [
        f"{big.type} {_resources(big)} {big.usd_per_hour}/h < {small.type} {_resources(small)} {small.usd_per_hour}/h"
        for a, b in combinations(_generations()[generation], 2)
        for big, small in ((a, b), (b, a))
        if _larger(big, small) and big.usd_per_hour < small.usd_per_hour
    ]
    assert cheaper_but_larger == []


@pytest.mark.parametrize("generation", sorted(_generations()))
def test_sizes_of_a_generation_are_listed_smallest_first(generation: str) -> None:
    vcpus = [inst.vcpus for inst in _generations()[generation]]
    assert vcpus == sorted(vcpus)
