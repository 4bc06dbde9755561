"""What differs between the families envman synthesizes: config keys, tensors, GGUF quirks.

Each :class:`Recipe` follows the transformers modeling code for the HF side (tensor names,
config keys) and llama.cpp's convert_hf_to_gguf.py for the GGUF side (architecture string,
metadata, the transformations it applies), so both engines compute the same function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from envman.errors import UsageError
from envman.synth.vocab import GPT2, QWEN2

if TYPE_CHECKING:
    from envman.matrix.schema import Model
    from envman.synth.weights import F32, Weights

SLIDING_WINDOW = 512  # gemma: local layers see this many tokens (llama.cpp reads it from the GGUF)


@dataclass(frozen=True)
class Recipe:
    hf_architecture: str
    model_type: str
    gguf_arch: str  # llama.cpp's architecture string (general.architecture)
    rope_theta: float
    rms_norm_eps: float
    activation: tuple[str, str] = ("hidden_act", "silu")
    tied: bool = False  # lm_head shares the embedding (not stored)
    qkv_bias: bool = False  # qwen2
    qk_norm: bool = False  # qwen3, gemma3: RMSNorm over each head of q and k
    sandwich_norms: bool = False  # gemma2/3: norms before and after both attention and MLP
    fused: bool = False  # phi3: qkv_proj and gate_up_proj
    gemma_norms: bool = False  # RMSNorm scales by (1 + w); llama.cpp's converter stores w + 1
    permute_qk: bool = False  # llama.cpp's llama arch uses interleaved RoPE; the converter permutes q/k rows
    pre_tokenizer: str = GPT2  # see envman.synth.vocab
    config: Mapping[str, Any] = field(default_factory=dict)  # extra config.json keys

    def gguf_metadata(self, model: Model) -> dict[str, Any]:
        """Architecture-specific GGUF keys beyond the common ones (without the arch prefix)."""
        if self.gguf_arch == "gemma2":
            return {
                "attention.sliding_window": SLIDING_WINDOW,
                "attn_logit_softcapping": float(self.config["attn_logit_softcapping"]),
                "final_logit_softcapping": float(self.config["final_logit_softcapping"]),
            }
        if self.gguf_arch == "gemma3":
            return {"attention.sliding_window": SLIDING_WINDOW}
        if self.gguf_arch == "phi3":
            # convert_hf_to_gguf.py writes 0 when config.json has none ("distinguish Phi-4")
            return {"rope.scaling.original_context_length": model.max_context, "attention.sliding_window": 0}
        return {}


_GEMMA = {
    "sliding_window": SLIDING_WINDOW,
    "attention_bias": False,
}

RECIPES: dict[str, Recipe] = {
    r.hf_architecture: r
    for r in (
        Recipe("LlamaForCausalLM", "llama", "llama", 10_000.0, 1e-5, permute_qk=True,
               config={"attention_bias": False, "mlp_bias": False, "rope_scaling": None}),
        Recipe("MistralForCausalLM", "mistral", "llama", 1_000_000.0, 1e-5, permute_qk=True,
               config={"sliding_window": None}),
        Recipe("Qwen2ForCausalLM", "qwen2", "qwen2", 1_000_000.0, 1e-6, qkv_bias=True, pre_tokenizer=QWEN2,
               config={"use_sliding_window": False, "sliding_window": None, "max_window_layers": 0}),
        Recipe("Qwen3ForCausalLM", "qwen3", "qwen3", 1_000_000.0, 1e-6, qk_norm=True, pre_tokenizer=QWEN2,
               config={"attention_bias": False, "use_sliding_window": False, "sliding_window": None,
                       "max_window_layers": 0}),
        # llama.cpp in xllamacpp 0.1.11 picks gemma2's query scale by model size, read from the layer
        # count (26, 42 or 46), and aborts on any other ("llama-model.cpp: fatal error"); 0.2.0 does not.
        Recipe("Gemma2ForCausalLM", "gemma2", "gemma2", 10_000.0, 1e-6,
               activation=("hidden_activation", "gelu_pytorch_tanh"), tied=True, sandwich_norms=True,
               gemma_norms=True,
               config={**_GEMMA, "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0}),
        Recipe("Gemma3ForCausalLM", "gemma3_text", "gemma3", 1_000_000.0, 1e-6,
               activation=("hidden_activation", "gelu_pytorch_tanh"), tied=True, sandwich_norms=True,
               gemma_norms=True, qk_norm=True,
               # llama.cpp makes 5 of every 6 layers local with RoPE base 10000 (its own constant). With
               # fewer than 6 layers none is global: xllamacpp 0.1.11-0.2.0 then make a global KV cache
               # of 0 layers and crash (SIGSEGV); 6 layers run there.
               config={**_GEMMA, "rope_local_base_freq": 10_000.0, "sliding_window_pattern": 6,
                       "attn_logit_softcapping": None, "final_logit_softcapping": None, "rope_scaling": None}),
        Recipe("Phi3ForCausalLM", "phi3", "phi3", 10_000.0, 1e-5, fused=True,
               # llama.cpp disables Phi-3 sliding windows; none here, so both engines agree
               config={"sliding_window": None, "rope_scaling": None, "resid_pdrop": 0.0, "embd_pdrop": 0.0}),
    )
}  # fmt: skip


def recipe_for(model: Model) -> Recipe:
    recipe = RECIPES.get(model.hf_architecture)
    if recipe is None:
        raise UsageError(
            f"cannot synthesize {model.name}: architecture {model.hf_architecture} is not supported",
            hint=f"envman synthesizes {', '.join(sorted(RECIPES))}",
        )
    return recipe


def intermediate_size(model: Model) -> int:
    return 2 * model.hidden_size


def hf_config(model: Model, recipe: Recipe, eos_ids: tuple[int, ...], bos: int, pad: int) -> dict[str, Any]:
    """config.json as transformers writes it for the architecture."""
    key, act = recipe.activation
    config: dict[str, Any] = {
        "architectures": [recipe.hf_architecture],
        "model_type": recipe.model_type,
        "vocab_size": model.vocab_size,
        "hidden_size": model.hidden_size,
        "intermediate_size": intermediate_size(model),
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.attention_heads,
        "num_key_value_heads": model.kv_heads,
        "head_dim": model.head_dim,
        "max_position_embeddings": model.max_context,
        "rms_norm_eps": recipe.rms_norm_eps,
        "rope_theta": recipe.rope_theta,
        key: act,
        "tie_word_embeddings": recipe.tied,
        "bos_token_id": bos,
        "eos_token_id": eos_ids[0],
        "pad_token_id": pad,  # phi3's default (32000) lies outside this vocabulary
        "torch_dtype": "bfloat16",
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": True,
        **recipe.config,
    }
    if recipe.gemma_norms:
        # llama.cpp scales queries by 1/sqrt(head_dim) for every gemma size but 27B
        config["query_pre_attn_scalar"] = model.head_dim
    if recipe.model_type == "phi3":
        config["original_max_position_embeddings"] = model.max_context
    return config


def hf_tensors(model: Model, recipe: Recipe, weights: Weights) -> dict[str, F32]:
    """Every tensor of the HF checkpoint, named as transformers names them, [out, in] layout."""
    hidden, inter, head = model.hidden_size, intermediate_size(model), model.head_dim
    q_rows, kv_rows = model.attention_heads * head, model.kv_heads * head
    norm_mean = 0.0 if recipe.gemma_norms else 1.0

    def norm(size: int) -> F32:
        return weights.uniform((size,), std=0.05, mean=norm_mean)

    def linear(rows: int, cols: int) -> F32:
        return weights.uniform((rows, cols), std=0.02)

    out: dict[str, F32] = {"model.embed_tokens.weight": weights.uniform((model.vocab_size, hidden), std=0.02)}
    for i in range(model.layers):
        p = f"model.layers.{i}."
        if recipe.fused:
            out[p + "self_attn.qkv_proj.weight"] = linear(q_rows + 2 * kv_rows, hidden)
        else:
            out[p + "self_attn.q_proj.weight"] = linear(q_rows, hidden)
            out[p + "self_attn.k_proj.weight"] = linear(kv_rows, hidden)
            out[p + "self_attn.v_proj.weight"] = linear(kv_rows, hidden)
        if recipe.qkv_bias:
            out[p + "self_attn.q_proj.bias"] = weights.uniform((q_rows,), std=0.02)
            out[p + "self_attn.k_proj.bias"] = weights.uniform((kv_rows,), std=0.02)
            out[p + "self_attn.v_proj.bias"] = weights.uniform((kv_rows,), std=0.02)
        if recipe.qk_norm:
            out[p + "self_attn.q_norm.weight"] = norm(head)
            out[p + "self_attn.k_norm.weight"] = norm(head)
        out[p + "self_attn.o_proj.weight"] = linear(hidden, q_rows)
        if recipe.fused:
            out[p + "mlp.gate_up_proj.weight"] = linear(2 * inter, hidden)  # gate rows first
        else:
            out[p + "mlp.gate_proj.weight"] = linear(inter, hidden)
            out[p + "mlp.up_proj.weight"] = linear(inter, hidden)
        out[p + "mlp.down_proj.weight"] = linear(hidden, inter)
        out[p + "input_layernorm.weight"] = norm(hidden)
        out[p + "post_attention_layernorm.weight"] = norm(hidden)
        if recipe.sandwich_norms:
            out[p + "pre_feedforward_layernorm.weight"] = norm(hidden)
            out[p + "post_feedforward_layernorm.weight"] = norm(hidden)
    out["model.norm.weight"] = norm(hidden)
    if not recipe.tied:
        out["lm_head.weight"] = weights.uniform((model.vocab_size, hidden), std=0.05)
    return out
