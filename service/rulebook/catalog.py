"""Typed models of ``rules/catalog.yaml``: the instance types the advisor may recommend, with their figures."""

from __future__ import annotations

import functools
import re
from typing import Literal

from pydantic import Field, model_validator

from service.rulebook.accelerators import AcceleratorSpec
from service.rulebook.strict import Strict

__all__ = ["Accelerator", "Catalog", "CatalogInstance"]


class Accelerator(Strict):
    kind: Literal["nvidia-gpu", "neuron"]
    name: str
    count: int = Field(ge=1, le=64)
    memory_gib: float = Field(gt=0, description="Memory of one device, GiB.")
    cores_per_device: int = Field(
        default=1,
        ge=1,
        le=8,
        description="Tensor-parallel units per device: 1 for a GPU; NeuronCores per chip on Inferentia and "
        "Trainium (tensor_parallel_degree counts NeuronCores there).",
    )


_FAMILY_OF_TYPE = re.compile(r"^ml\.([a-z]+)\d")
_GENERATION = re.compile(r"^ml\.[a-z]+(\d+)([a-z-]*)\.")


@functools.lru_cache(maxsize=1024)  # a catalog's few hundred names, parsed once
def _generation_of(type_name: str) -> tuple[int, str]:
    match = _GENERATION.match(type_name)
    return (int(match.group(1)), match.group(2)) if match else (0, "")


InstanceMode = Literal["real_time", "asynchronous", "inference_components", "batch_transform"]
_INSTANCE_MODES: tuple[InstanceMode, ...] = ("real_time", "asynchronous", "inference_components", "batch_transform")


class CatalogInstance(Strict):
    type: str = Field(pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
    vcpus: int = Field(ge=1, le=1024)
    memory_gib: float = Field(gt=0, le=32_768)
    accelerator: Accelerator | None = None
    usd_per_hour: float = Field(gt=0, le=1000)
    volume_size_supported: bool = Field(
        default=True,
        description="Whether ProductionVariant.VolumeSizeInGB applies; types with local NVMe instance "
        "storage refuse it.",
    )
    source: str | None = Field(default=None, max_length=400, description="Where this row's figures come from.")
    modes: list[InstanceMode] = Field(
        default_factory=lambda: list(_INSTANCE_MODES),
        description="The hosting modes the type is allowed in: endpoints take botocore's "
        "ProductionVariantInstanceType, transform jobs its TransformInstanceType (a different list).",
    )

    @property
    def generation(self) -> tuple[int, str]:
        """(number, suffix) of the type's generation: ml.c6i.large -> (6, 'i'); newer compares greater."""
        return _generation_of(self.type)

    @property
    def family(self) -> str:
        match = _FAMILY_OF_TYPE.match(self.type)
        assert match is not None  # guaranteed by the type pattern and _family_known
        return match.group(1)

    @model_validator(mode="after")
    def _family_known(self) -> CatalogInstance:
        match = _FAMILY_OF_TYPE.match(self.type)
        if match is None or match.group(1) not in ("c", "m", "r", "g", "p", "inf"):
            raise ValueError(f"instance type '{self.type}' is not of family c, m, r, g, p or inf")
        return self


class Catalog(Strict):
    """``rules/catalog.yaml``: the instance types the advisor may recommend."""

    source: str = Field(min_length=1)
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    currency: Literal["USD"]
    note: str = Field(min_length=1)
    instances: list[CatalogInstance] = Field(min_length=1)
    accelerators: list[AcceleratorSpec] = Field(
        default_factory=list,
        description="Per accelerator: the precisions it runs, memory bandwidth and dense compute (LLM sizing). "
        "An accelerator without an entry is no candidate for an LLM described by workload.llm.",
    )

    def accelerator_spec(self, name: str) -> AcceleratorSpec | None:
        return next((a for a in self.accelerators if a.name == name), None)

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        seen: set[str] = set()
        for inst in self.instances:
            if inst.type in seen:
                raise ValueError(f"instance type '{inst.type}' listed twice")
            seen.add(inst.type)
        return self
