"""The README's hosting tour: each example is answered in the mode (or refused with the code) its block names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from profiles import profile

from service.engine import CompiledRuleset, ProfileRejected, evaluate

README = Path(__file__).resolve().parents[2] / "README.md"
_SECTION = README.read_text().split("### Hosting modes", 1)[1].split("\n## ", 1)[0]
_BLOCKS = re.findall(r"```sh\n# (.+?)\ncurl .*? -d '(.*?)'\n```", _SECTION, flags=re.S)


def test_the_tour_has_one_example_per_chosen_mode_and_a_refusal() -> None:
    assert [want for want, _ in _BLOCKS] == [
        "serverless",
        "asynchronous",
        "inference_components",
        "batch_transform",
        "422 processing-time-above-real-time-limit",
    ]


@pytest.mark.parametrize(("want", "body"), _BLOCKS, ids=[want for want, _ in _BLOCKS])
def test_each_example_is_answered_as_the_readme_says(ruleset: CompiledRuleset, want: str, body: str) -> None:
    prof = profile(json.loads(body))
    if want.startswith("422 "):
        with pytest.raises(ProfileRejected) as refused:
            evaluate(prof, ruleset)
        assert refused.value.code == want.removeprefix("422 ")
        assert "60 s" in refused.value.message and "async_ok" in refused.value.message
        return
    assert evaluate(prof, ruleset).hosting.mode == want


def test_the_inference_component_example_costs_what_the_readme_says(ruleset: CompiledRuleset) -> None:
    """The tour's figures: a reserved share of about 28 USD where its own fleet would cost about 220 USD."""
    body = dict(_BLOCKS)["inference_components"]
    rec = evaluate(profile(json.loads(body)), ruleset)
    own = next(r.reason for r in rec.hosting.rejected if r.mode == "real_time")
    assert 25 <= rec.cost.usd_per_month_expected <= 31 and "223" in own
    needs = rec.hosting.aws.create_inference_component.Specification.ComputeResourceRequirements  # type: ignore[union-attr]
    assert (needs.NumberOfCpuCoresRequired, needs.MinMemoryRequiredInMb) == (0.25, 308)
