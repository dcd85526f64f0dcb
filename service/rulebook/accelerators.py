"""Typed model of the catalog's ``accelerators`` section: what each accelerator runs and how fast.

LLM sizing needs, per accelerator, the weight precisions it runs natively, its memory bandwidth (decode
reads the weights and the KV cache once per token) and its dense 16-bit compute (prefill is compute
bound). Each entry names the datasheet it comes from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from service.rulebook.strict import Strict

__all__ = ["AcceleratorSpec", "Precision"]

Precision = Literal["bf16", "fp16", "fp8", "int8", "int4"]


class AcceleratorSpec(Strict):
    name: str = Field(min_length=1, description="As instances[].accelerator.name spells it.")
    precisions: list[Precision] = Field(
        min_length=1, description="Weight precisions the accelerator runs (bf16 needs Ampere or newer; fp8 Ada/Hopper)."
    )
    memory_bandwidth_gb_s: float = Field(gt=0, le=100_000, description="Memory bandwidth of one device, GB/s.")
    dense_tflops_16bit: float = Field(
        gt=0, le=100_000, description="Dense (no sparsity) bf16 or fp16 tensor throughput of one device, TFLOPS."
    )
    source: str = Field(min_length=1, max_length=600)
