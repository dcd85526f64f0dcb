"""The workload profile's cross-field rules, read from a body that failed its schema, so that one 422 lists them too.

A body whose shape is valid meets these rules in the engine (``ProfileRejected``: ``mean-above-peak``,
``window-above-peak``, ``model-size-required``, ``throughput-required``). When the shape is not valid, the 422
lists the shape's errors, and these are added wherever the values they compare are there and of the right type.
"""

from __future__ import annotations

from typing import Any

__all__ = ["profile_rule_errors"]

_SIZE_REQUIRED_BOUNDS = ("gpu", "memory")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def profile_rule_errors(body: Any) -> list[tuple[str, str]]:
    """(key, message) for every cross-field rule the body breaks, as far as its values can be read."""
    data = _dict(body)
    workload, traffic = _dict(data.get("workload")), _dict(data.get("traffic"))
    errors: list[tuple[str, str]] = []
    peak = _number(traffic.get("peak_rps"))
    mean = _number(traffic.get("mean_rps"))
    if peak is not None and mean is not None and mean > peak:
        errors.append(("traffic.mean_rps", f"is above traffic.peak_rps ({peak:g}), which must be the overall peak"))
    windows = traffic.get("peak_windows")
    for i, window in enumerate(windows if isinstance(windows, list) else ()):
        rps = _number(_dict(window).get("rps"))
        if peak is not None and rps is not None and rps > peak:
            errors.append((f"traffic.peak_windows[{i}].rps", f"is above traffic.peak_rps ({peak:g})"))
    if "llm" in workload:  # sized by its architecture, its capacity in streams: service/engine/llm_profile.py
        return errors
    sized = workload.get("bound") in _SIZE_REQUIRED_BOUNDS or workload.get("model_kind") == "llm"
    if workload and sized and "model_memory_gib" not in workload:
        errors.append(("workload.model_memory_gib", "is required when bound is gpu or memory, or model_kind is llm"))
    if traffic and "per_instance_rps" not in traffic and not data.get("load_tests"):
        errors.append(("traffic.per_instance_rps", "is required unless load_tests is given"))
    return errors
