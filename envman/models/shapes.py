"""What a memory estimate needs from a model, read from its config.json or its GGUF header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envman.errors import UsageError

GEMMA3_SLIDING_PATTERN = 6  # transformers 4.57.1 Gemma3TextConfig: sliding_window_pattern default 6


@dataclass(frozen=True)
class Shapes:
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    max_context: int
    intermediate_size: int = 0
    sliding_window: int | None = None
    sliding_layers: int = 0
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int = 0
    num_experts: int = 0
    experts_per_token: int = 0
    tied_embeddings: bool = False

    def estimated_parameters(self) -> int:
        """A dense decoder's parameters from its shapes: the fallback when no tensor table can be read."""
        attention = self.hidden_size * self.head_dim * (2 * self.attention_heads + 2 * self.kv_heads)
        experts = max(self.num_experts, 1)
        mlp = 3 * self.hidden_size * self.intermediate_size * experts
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        return embeddings + self.layers * (attention + mlp)


def sliding_layers(model_type: str, layers: int, layer_types: object, pattern: object) -> int:
    """How many layers attend only to their window, as the architecture defines it.

    - ``layer_types`` in the config (gpt-oss, newer saves of any model) says it per layer;
    - Gemma 2: layers 0, 2, 4 … (transformers 4.57.1 Gemma2Config: sliding if (i + 1) % 2);
    - Gemma 3: all but every 6th (Gemma3TextConfig: sliding if (i + 1) % sliding_window_pattern;
      llama.cpp does the same, FACTS.md).
    Other models with a ``sliding_window`` key are sized at full attention: engines differ on
    whether they honour it (llama.cpp runs Mistral/Phi-3 GGUFs without a window).
    """
    if isinstance(layer_types, list) and layer_types:
        return sum(1 for kind in layer_types[:layers] if kind == "sliding_attention")
    if model_type == "gemma2":
        return (layers + 1) // 2
    if model_type in ("gemma3", "gemma3_text"):
        every = pattern if isinstance(pattern, int) and pattern > 0 else GEMMA3_SLIDING_PATTERN
        return layers - layers // every
    return 0


def integer(config: dict[str, Any], where: str, *keys: str, default: int | None = None) -> int:
    """The first of ``keys`` that ``config`` holds, as a positive integer."""
    for key in keys:
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            value = max(value)  # per-layer values (some GGUF head counts): size for the largest
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{where}: {key} is {value!r}, not a count", hint="the model's metadata is damaged")
        return value
    if default is not None:
        return default
    raise UsageError(
        f"{where} has no {' / '.join(keys)}",
        hint="envman reads the model's shapes from its metadata; this file does not describe a decoder model",
    )
