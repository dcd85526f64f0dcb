"""Candidate rulesets for tests: copies of rules/ with one visible change each."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

__all__ = ["ROOT", "write_candidate"]

ROOT = Path(__file__).resolve().parents[1]
_STEADY = "      traffic.burstiness: steady\n    then:\n      method: target_tracking\n      max_capacity_factor: 1.5"
_CLASSIC = "      workload.bound: cpu\n      workload.model_kind: classic_ml\n    then: {family: c}"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds the text this test edits"
    path.write_text(text.replace(old, new))


def write_candidate(
    target: Path, *, version: str | None = None, steady_factor: str | None = None, classic_to_m_below_100: bool = False
) -> Path:
    """Write the shipped ruleset to ``target`` (again on every call, so changes can be re-applied), then:
    relabel it ``version``; give steady load another ``max_capacity_factor``; send classic ML below
    100 RPS to general-purpose M instances."""
    shutil.copytree(
        ROOT / "rules", target, ignore=shutil.ignore_patterns("tests", "schema", "README.md"), dirs_exist_ok=True
    )
    if version is not None:
        manifest = target / "ruleset.yaml"
        text = manifest.read_text()
        assert re.search(r'^version: ".*"$', text, flags=re.M), f"{manifest} has no version line"
        manifest.write_text(re.sub(r'^version: ".*"$', f'version: "{version}"', text, count=1, flags=re.M))
    if steady_factor is not None:
        _edit(target / "tables" / "scaling.yaml", _STEADY, _STEADY.replace("1.5", steady_factor))
    if classic_to_m_below_100:
        _edit(
            target / "tables" / "family.yaml",
            _CLASSIC,
            _CLASSIC.replace("classic_ml\n", "classic_ml\n      traffic.peak_rps: {gte: 100}\n"),
        )
    return target
