"""rules/models.yaml: every model sourced from its published config.json, and its stated parameter count
recomputed from the architecture within 10 %."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.rulebook.llm_models import LlmModel, ModelCatalog
from service.rulebook.loader import load_ruleset

RULES_DIR = Path(__file__).parents[2] / "rules"
MODELS = ModelCatalog.model_validate(yaml.safe_load((RULES_DIR / "models.yaml").read_text()))
BY_ID = MODELS.by_id()

# The models the LLM sizing must know (the architectures of the hosting fact sheet, section 5.5).
REQUIRED = (
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "mistral-7b-v0.1",
    "mistral-7b-v0.3",
    "mixtral-8x7b-v0.1",
)


def test_the_required_models_are_listed() -> None:
    assert set(REQUIRED) <= set(BY_ID)


@pytest.mark.parametrize("model", MODELS.models, ids=lambda m: m.id)
def test_every_model_names_its_published_config(model: LlmModel) -> None:
    assert "huggingface.co/" in model.source and "config.json" in model.source, model.source


@pytest.mark.parametrize("model", MODELS.models, ids=lambda m: m.id)
def test_parameters_recomputed_from_the_architecture_match_within_10_percent(model: LlmModel) -> None:
    computed = model.parameter_count() / 1e9
    assert abs(computed - model.parameters_b) <= 0.10 * model.parameters_b, (
        f"{model.id}: {computed:.2f}B from the architecture vs {model.parameters_b}B stated"
    )


def test_the_count_is_not_tuned_to_pass() -> None:
    """The recomputation can fail: a Llama 3.1 8B with the FFN of the 70B is far off its stated 8B."""
    wrong = BY_ID["llama-3.1-8b"].model_copy(update={"intermediate_size": 28672})
    assert wrong.parameter_count() / 1e9 > 8 * 1.10


@pytest.mark.parametrize(
    ("model_id", "kib_per_token"),
    # 2 x layers x KV heads x head_dim x 2 bytes (bf16), as the fact sheet's section 5.5 derives it
    [("llama-3.1-8b", 128), ("llama-3.1-70b", 320), ("llama-3.1-405b", 504), ("mixtral-8x7b-v0.1", 128)],
)
def test_kv_cache_per_token(model_id: str, kib_per_token: int) -> None:
    assert BY_ID[model_id].kv_elements_per_token() * 2 / 1024 == kib_per_token


def test_only_mixtral_is_a_mixture_of_experts_and_only_mistral_v01_has_a_window() -> None:
    assert [m.id for m in MODELS.models if m.num_local_experts] == ["mixtral-8x7b-v0.1"]
    assert {m.id: m.sliding_window for m in MODELS.models if m.sliding_window} == {"mistral-7b-v0.1": 4096}


def test_heads_must_be_a_multiple_of_kv_heads() -> None:
    data = BY_ID["llama-3.1-8b"].model_dump()
    data["num_key_value_heads"] = 5
    with pytest.raises(ValueError, match="not a multiple of num_key_value_heads"):
        LlmModel.model_validate(data)


def test_the_shipped_ruleset_loads_the_models() -> None:
    assert load_ruleset(RULES_DIR).models.by_id().keys() == BY_ID.keys()
