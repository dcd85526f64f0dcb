"""rules/catalog.yaml: valid, every type a real SageMaker hosting type, families complete, prices sane."""

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


def _load_catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(CATALOG_FILE.read_text()))


CATALOG = _load_catalog()
TYPES = [inst.type for inst in CATALOG.instances]


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


@pytest.mark.parametrize("family", FAMILIES)
def test_family_has_at_least_three_types(family: str) -> None:
    members = [inst.type for inst in CATALOG.instances if inst.family == family]
    assert len(members) >= 3, f"family {family} has only {members}"


@pytest.mark.parametrize("instance_type", TYPES)
def test_accelerator_matches_family(instance_type: str) -> None:
    inst = next(i for i in CATALOG.instances if i.type == instance_type)
    expected_kind = ACCELERATOR_KIND.get(inst.family)
    if expected_kind is None:
        assert inst.accelerator is None, f"{instance_type}: family {inst.family} has no accelerators"
    else:
        assert inst.accelerator is not None, f"{instance_type}: family {inst.family} needs an accelerator"
        assert inst.accelerator.kind == expected_kind


def test_types_are_grouped_by_family_in_order() -> None:
    order = [inst.family for inst in CATALOG.instances]
    blocks = [family for i, family in enumerate(order) if i == 0 or order[i - 1] != family]
    assert blocks == [f for f in FAMILIES if f in order], "keep each family in one block, ordered c, m, r, g, p, inf"


def _generations() -> dict[str, list[CatalogInstance]]:
    by_generation: dict[str, list[CatalogInstance]] = defaultdict(list)
    for inst in CATALOG.instances:
        by_generation[_generation(inst)].append(inst)
    return dict(by_generation)


@pytest.mark.parametrize("generation", sorted(_generations()))
def test_larger_size_never_costs_less(generation: str) -> None:
    sizes = sorted(_generations()[generation], key=lambda inst: inst.vcpus)
    cheaper_but_larger = [
        f"{big.type} ({big.vcpus} vCPU) {big.usd_per_hour}/h < {small.type} ({small.vcpus} vCPU) {small.usd_per_hour}/h"
        for small, big in combinations(sizes, 2)
        if big.vcpus > small.vcpus and big.usd_per_hour < small.usd_per_hour
    ]
    assert cheaper_but_larger == []


@pytest.mark.parametrize("generation", sorted(_generations()))
def test_sizes_of_a_generation_are_listed_smallest_first(generation: str) -> None:
    vcpus = [inst.vcpus for inst in _generations()[generation]]
    assert vcpus == sorted(vcpus)
