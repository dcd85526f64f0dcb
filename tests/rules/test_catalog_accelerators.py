"""The catalog's accelerators section: every accelerator of an instance type described, sourced, and the
precisions each GPU generation runs as NVIDIA documents them."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.rulebook.loader import load_ruleset

CATALOG = load_ruleset(Path(__file__).parents[2] / "rules").catalog
IN_USE = sorted({i.accelerator.name for i in CATALOG.instances if i.accelerator is not None})

# Architecture facts from NVIDIA's datasheets: BF16 tensor cores from Ampere on (not Turing's T4), FP8 from
# Ada Lovelace and Hopper on (L4, L40S, H100; not the Ampere A10G and A100).
RUNS_BF16 = {"NVIDIA T4": False, "NVIDIA A10G": True, "NVIDIA L4": True, "NVIDIA L40S": True}
RUNS_BF16 |= {"NVIDIA A100": True, "NVIDIA H100": True, "AWS Inferentia2": True}
RUNS_FP8 = {"NVIDIA T4": False, "NVIDIA A10G": False, "NVIDIA A100": False}
RUNS_FP8 |= {"NVIDIA L4": True, "NVIDIA L40S": True, "NVIDIA H100": True}


@pytest.mark.parametrize("name", IN_USE)
def test_every_accelerator_in_use_is_described_and_sourced(name: str) -> None:
    spec = CATALOG.accelerator_spec(name)
    assert spec is not None, f"{name} has no entry under accelerators"
    assert len(spec.source) > 40


@pytest.mark.parametrize("name", IN_USE)
def test_precisions_follow_the_architecture(name: str) -> None:
    spec = CATALOG.accelerator_spec(name)
    assert spec is not None
    assert ("bf16" in spec.precisions) == RUNS_BF16[name]
    if name in RUNS_FP8:
        assert ("fp8" in spec.precisions) == RUNS_FP8[name]


def test_bandwidth_orders_the_generations() -> None:
    """HBM parts read memory several times faster than GDDR parts: decode speed follows."""
    bw = {a.name: a.memory_bandwidth_gb_s for a in CATALOG.accelerators}
    assert bw["NVIDIA H100"] > bw["NVIDIA A100"] > bw["NVIDIA L40S"] > bw["NVIDIA A10G"] > bw["NVIDIA L4"]
