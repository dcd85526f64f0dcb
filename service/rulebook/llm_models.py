"""Typed models of ``rules/models.yaml``: large language models by their published architecture.

Each entry carries the fields of the model's Hugging Face ``config.json`` under the names used
there, so an entry is checked by comparing it with that file. The parameter count and the KV cache
per token are computed from the architecture (decoder-only, grouped-query attention, gated FFN,
optional mixture of experts).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from service.rulebook.strict import Strict

__all__ = ["LlmModel", "ModelCatalog"]


class LlmModel(Strict):
    """One model, as its config.json describes it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,62}$", description="What workload.llm.model names.")
    name: str = Field(min_length=1, max_length=100)
    parameters_b: float = Field(gt=0, le=10_000, description="Parameters as the model's name or card states, billions.")
    num_hidden_layers: int = Field(ge=1, le=1000)
    hidden_size: int = Field(ge=1, le=1_000_000)
    intermediate_size: int = Field(ge=1, le=10_000_000, description="FFN width (of one expert).")
    num_attention_heads: int = Field(ge=1, le=10_000)
    num_key_value_heads: int = Field(ge=1, le=10_000)
    head_dim: int | None = Field(default=None, ge=1, le=10_000, description="Default: hidden_size / heads.")
    vocab_size: int = Field(ge=1, le=10_000_000)
    max_position_embeddings: int = Field(ge=1, le=100_000_000, description="Longest context, tokens.")
    sliding_window: int | None = Field(
        default=None, ge=1, le=100_000_000, description="Attention window, tokens: the KV cache holds at most this."
    )
    num_local_experts: int | None = Field(default=None, ge=2, le=10_000, description="Experts per MoE layer.")
    num_experts_per_tok: int | None = Field(default=None, ge=1, le=10_000, description="Experts active per token.")
    tie_word_embeddings: bool = False
    source: str = Field(min_length=1, max_length=600, description="The config.json the fields come from.")

    @property
    def head_dimension(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_attention_heads

    @property
    def experts(self) -> int:
        return self.num_local_experts or 1

    def parameter_count(self) -> int:
        """Parameters from the architecture: embeddings (and an untied output head), per layer the
        query/key/value/output projections (KV heads for keys and values), the gated FFN's three
        matrices per expert with the router, and the RMS norms."""
        h, d = self.hidden_size, self.head_dimension
        attention = h * self.num_attention_heads * d * 2 + h * self.num_key_value_heads * d * 2
        ffn = 3 * h * self.intermediate_size * self.experts
        router = h * self.num_local_experts if self.num_local_experts else 0
        per_layer = attention + ffn + router + 2 * h
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_hidden_layers * per_layer + embeddings + h

    def kv_elements_per_token(self) -> int:
        """Keys and values cached per token: 2 x layers x KV heads x head dimension."""
        return 2 * self.num_hidden_layers * self.num_key_value_heads * self.head_dimension

    @model_validator(mode="after")
    def _heads_divide(self) -> LlmModel:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"model '{self.id}': num_attention_heads {self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads {self.num_key_value_heads}"
            )
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ValueError(f"model '{self.id}': hidden_size is not a multiple of num_attention_heads; give head_dim")
        if (self.num_local_experts is None) != (self.num_experts_per_tok is None):
            raise ValueError(f"model '{self.id}': give both num_local_experts and num_experts_per_tok, or neither")
        return self


class ModelCatalog(Strict):
    """``rules/models.yaml``: the models workload.llm.model may name."""

    models: list[LlmModel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ModelCatalog:
        seen: set[str] = set()
        for model in self.models:
            if model.id in seen:
                raise ValueError(f"model '{model.id}' listed twice")
            seen.add(model.id)
        return self

    def by_id(self) -> dict[str, LlmModel]:
        return {m.id: m for m in self.models}
