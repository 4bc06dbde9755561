"""config.json readings: quantization_config, shapes of MLA / MoE / sliding-window models, parameter counts."""

from __future__ import annotations

from typing import Any

import pytest

from envman.errors import UsageError
from envman.matrix.schema import Format
from envman.models import hf_config
from envman.models.tensors import TensorEntry, count_safetensors


@pytest.mark.parametrize(
    ("qc", "expected"),
    [
        ({"quant_method": "awq", "bits": 4, "group_size": 128}, (Format.AWQ, "int4", "awq")),
        ({"quant_method": "gptq", "bits": 8}, (Format.GPTQ, "int8", "gptq")),
        ({"quant_method": "gptq_marlin", "bits": 4}, (Format.GPTQ, "int4", "gptq_marlin")),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, (Format.BNB, "4bit", "bitsandbytes")),
        ({"quant_method": "bitsandbytes", "load_in_8bit": True}, (Format.BNB, "8bit", "bitsandbytes")),
        ({"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}, (Format.FP8, "fp8", "fp8")),
        ({"quant_method": "compressed-tensors",
          "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float"}}}},
         (Format.FP8, "fp8", "compressed-tensors")),
        ({"quant_method": "mxfp4"}, (Format.MXFP4, None, "mxfp4")),
        ({"quant_method": "modelopt", "quant_algo": "FP8"}, (Format.FP8, "fp8", "modelopt")),
    ],
)  # fmt: skip
def test_quantization_config(qc: dict[str, Any], expected: tuple[Format, str | None, str]) -> None:
    got = hf_config.quantization({"quantization_config": qc}, "config.json")
    assert got is not None
    assert (got.format, got.quantization, got.quant_method) == expected


def test_mlx_and_full_precision() -> None:
    mlx = hf_config.quantization({"quantization": {"group_size": 64, "bits": 4}}, "config.json")
    assert mlx is not None
    assert (mlx.format, mlx.quantization) == (Format.MLX, "4bit")
    assert hf_config.quantization({"torch_dtype": "bfloat16"}, "config.json") is None


def test_quantizations_envman_cannot_plan_say_so() -> None:
    with pytest.raises(UsageError) as caught:
        hf_config.quantization({"quantization_config": {"quant_method": "hqq"}}, "org/m config.json")
    assert caught.value.message == "org/m config.json: quantization method 'hqq' is not one envman can plan for"
    int4 = {"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 4, "type": "int"}}}}
    with pytest.raises(UsageError, match=r"compressed-tensors weights \(int 4-bit\) are not a format"):
        hf_config.quantization({"quantization_config": int4}, "config.json")


# DeepSeek-V3's config.json keys, at transformers 4.57.1 DeepseekV3Config's defaults (which are V3's values).
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "num_hidden_layers": 61,
    "hidden_size": 7168, "num_attention_heads": 128, "num_key_value_heads": 128, "vocab_size": 129280,
    "max_position_embeddings": 163840, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
    "v_head_dim": 128, "n_routed_experts": 256, "num_experts_per_tok": 8, "moe_intermediate_size": 2048,
}  # fmt: skip


def test_mla_and_moe_shapes() -> None:
    shapes = hf_config.shapes(DEEPSEEK_V3, "config.json")
    assert (shapes.kv_lora_rank, shapes.qk_rope_head_dim, shapes.head_dim) == (512, 64, 192)
    assert (shapes.num_experts, shapes.experts_per_token) == (256, 8)


def test_layer_types_say_which_layers_slide() -> None:
    # gpt-oss writes layer_types: sliding and full alternate, window 128.
    config = {"num_hidden_layers": 4, "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10,
              "max_position_embeddings": 4096, "sliding_window": 128, "model_type": "gpt_oss",
              "layer_types": ["sliding_attention", "full_attention"] * 2}  # fmt: skip
    shapes = hf_config.shapes(config, "config.json")
    assert (shapes.sliding_window, shapes.sliding_layers) == (128, 2)


def test_a_window_the_architecture_does_not_apply_is_not_counted() -> None:
    # Qwen2 configs carry sliding_window with use_sliding_window false; Mistral/Phi-3 are sized at full attention.
    base = {"num_hidden_layers": 4, "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10,
            "max_position_embeddings": 4096, "sliding_window": 4096}  # fmt: skip
    assert hf_config.shapes(base | {"model_type": "qwen2", "use_sliding_window": False}, "c").sliding_window is None
    assert hf_config.shapes(base | {"model_type": "mistral"}, "c").sliding_layers == 0


def test_packed_and_side_tensors_of_quantized_checkpoints() -> None:
    awq = [
        TensorEntry("model.layers.0.mlp.up_proj.qweight", "I32", 128 * 32),  # 8 4-bit weights per int32
        TensorEntry("model.layers.0.mlp.up_proj.qzeros", "I32", 32),
        TensorEntry("model.layers.0.mlp.up_proj.scales", "F16", 256),
        TensorEntry("model.embed_tokens.weight", "F16", 1000),
    ]
    assert count_safetensors(awq, Format.AWQ, 4).parameters == 128 * 32 * 8 + 1000
    bnb = [
        TensorEntry("model.layers.0.mlp.up_proj.weight", "U8", 500),  # two 4-bit weights per byte
        TensorEntry("model.layers.0.mlp.up_proj.weight.absmax", "F32", 16),
        TensorEntry("model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4", "U8", 100),
        TensorEntry("lm_head.weight", "BF16", 1000),
    ]
    count = count_safetensors(bnb, Format.BNB, 4)
    assert (count.parameters, count.dtype) == (2000, "bfloat16")


def test_active_parameters_of_a_moe() -> None:
    tensors = [
        TensorEntry("model.layers.0.mlp.experts.0.up_proj.weight", "BF16", 100),
        TensorEntry("model.layers.0.mlp.experts.1.up_proj.weight", "BF16", 100),
        TensorEntry("model.layers.0.mlp.experts.2.up_proj.weight", "BF16", 100),
        TensorEntry("model.layers.0.mlp.experts.3.up_proj.weight", "BF16", 100),
        TensorEntry("model.layers.0.mlp.shared_experts.up_proj.weight", "BF16", 50),
        TensorEntry("model.embed_tokens.weight", "BF16", 150),
    ]
    count = count_safetensors(tensors, Format.PYTORCH, None)
    assert (count.parameters, count.expert_parameters) == (600, 400)
    assert count.active(4, 1) == 600 - 300  # one expert of four per token
