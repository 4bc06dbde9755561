"""A Hugging Face config.json: architecture, shapes, quantization, modalities, remote code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envman.errors import UsageError
from envman.matrix.schema import Format, Modality
from envman.models.shapes import Shapes, integer, sliding_layers

# Where multimodal configs keep the language model's shapes (Gemma 3, Llava, Mistral 3 …: text_config;
# InternVL: llm_config; DeepSeek-VL: language_config).
TEXT_CONFIG_KEYS = ("text_config", "llm_config", "language_config")
VISION_KEYS = ("vision_config", "vision_tower", "mm_vision_tower", "visual")
AUDIO_KEYS = ("audio_config",)

# quantization_config.quant_method -> envman's format (vLLM names its Marlin kernels as methods too).
QUANT_FORMATS = {
    "awq": Format.AWQ,
    "awq_marlin": Format.AWQ,
    "gptq": Format.GPTQ,
    "gptq_marlin": Format.GPTQ,
    "bitsandbytes": Format.BNB,
    "fp8": Format.FP8,
    "fbgemm_fp8": Format.FP8,
    "mxfp4": Format.MXFP4,
}


@dataclass(frozen=True)
class Quantization:
    format: Format
    quantization: str | None = None  # the catalog's labels: int4 (AWQ/GPTQ), 4bit (bnb, mlx), fp8
    quant_method: str | None = None
    bits: int | None = None


def load(path: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read {name}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{name} is not valid JSON: {error}", hint="the model's config.json is damaged") from None
    if not isinstance(data, dict):
        raise UsageError(f"{name} is not a JSON object", hint="the model's config.json is damaged")
    return data


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    for key in TEXT_CONFIG_KEYS:
        nested = config.get(key)
        if isinstance(nested, dict) and nested:
            return nested
    return config


def architectures(config: dict[str, Any]) -> tuple[str, ...]:
    value = config.get("architectures") or text_config(config).get("architectures") or ()
    return tuple(str(a) for a in value) if isinstance(value, list) else ()


def model_types(config: dict[str, Any]) -> tuple[str, ...]:
    found = [config.get("model_type"), text_config(config).get("model_type")]
    return tuple(dict.fromkeys(str(t) for t in found if t))


def shapes(config: dict[str, Any], where: str) -> Shapes:
    text = text_config(config)
    model_type = str(text.get("model_type") or config.get("model_type") or "")
    layers = integer(text, where, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    hidden = integer(text, where, "hidden_size", "n_embd", "d_model")
    heads = integer(text, where, "num_attention_heads", "n_head", "num_heads")
    kv_heads = integer(text, where, "num_key_value_heads", "multi_query_group_num", "n_head_kv", default=heads)
    head_dim = integer(text, where, "head_dim", default=hidden // max(heads, 1))
    kv_lora_rank = text.get("kv_lora_rank")
    rope_dim = text.get("qk_rope_head_dim")
    if isinstance(kv_lora_rank, int) and isinstance(rope_dim, int):
        head_dim = integer(text, where, "qk_nope_head_dim", default=0) + rope_dim
    window = text.get("sliding_window")
    window = window if isinstance(window, int) and window > 0 and text.get("use_sliding_window") is not False else None
    return Shapes(
        layers=layers,
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=integer(text, where, "vocab_size", "padded_vocab_size", default=0)
        or integer(config, where, "vocab_size"),
        max_context=integer(
            text, where, "max_position_embeddings", "seq_length", "n_positions", "max_sequence_length", default=0
        )
        or integer(config, where, "max_position_embeddings", "seq_length"),
        intermediate_size=integer(text, where, "intermediate_size", "ffn_hidden_size", "n_inner", default=4 * hidden),
        sliding_window=window,
        sliding_layers=sliding_layers(model_type, layers, text.get("layer_types"), text.get("sliding_window_pattern"))
        if window
        else 0,
        kv_lora_rank=kv_lora_rank if isinstance(kv_lora_rank, int) and isinstance(rope_dim, int) else None,
        qk_rope_head_dim=rope_dim if isinstance(kv_lora_rank, int) and isinstance(rope_dim, int) else 0,
        num_experts=integer(text, where, "num_local_experts", "n_routed_experts", "num_experts", default=0),
        experts_per_token=integer(text, where, "num_experts_per_tok", "moe_topk", default=0),
        tied_embeddings=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
    )


def quantization(config: dict[str, Any], where: str) -> Quantization | None:
    """The stored quantization, or None for full-precision weights."""
    qc = config.get("quantization_config") or text_config(config).get("quantization_config")
    if not qc:
        mlx = config.get("quantization")  # mlx-lm writes {"group_size": 64, "bits": 4} at the top level
        if isinstance(mlx, dict) and isinstance(mlx.get("bits"), int):
            return Quantization(Format.MLX, f"{mlx['bits']}bit", bits=mlx["bits"])
        return None
    if not isinstance(qc, dict):
        raise UsageError(f"{where}: quantization_config is {qc!r}, not a table")
    method = str(qc.get("quant_method") or "").lower()
    bits = qc.get("bits", qc.get("w_bit"))
    bits = bits if isinstance(bits, int) else None
    if method == "bitsandbytes":
        bits = 4 if qc.get("load_in_4bit") else 8
        return Quantization(Format.BNB, f"{bits}bit", method, bits)
    if method == "compressed-tensors":
        return _compressed_tensors(qc, where)
    if method == "modelopt" and "FP8" in str(qc.get("quant_algo", "")).upper():
        return Quantization(Format.FP8, "fp8", method, 8)
    fmt = QUANT_FORMATS.get(method)
    if fmt is None:
        known = ", ".join(sorted({*QUANT_FORMATS, "compressed-tensors", "modelopt"}))
        raise UsageError(
            f"{where}: quantization method {method or '(none)'!r} is not one envman can plan for",
            hint=f"known quant_method values: {known}",
        )
    if fmt in (Format.AWQ, Format.GPTQ):
        return Quantization(fmt, f"int{bits or 4}", method, bits or 4)
    if fmt is Format.FP8:
        return Quantization(fmt, "fp8", method, 8)
    return Quantization(fmt, None, method, 4 if fmt is Format.MXFP4 else bits)


def _compressed_tensors(qc: dict[str, Any], where: str) -> Quantization:
    groups = qc.get("config_groups") or {}
    weights = (
        [g.get("weights") or {} for g in groups.values() if isinstance(g, dict)] if isinstance(groups, dict) else []
    )
    if weights and all(w.get("type") == "float" and w.get("num_bits") == 8 for w in weights):
        return Quantization(Format.FP8, "fp8", "compressed-tensors", 8)
    described = ", ".join(f"{w.get('type')} {w.get('num_bits')}-bit" for w in weights) or "no config_groups"
    raise UsageError(
        f"{where}: compressed-tensors weights ({described}) are not a format envman can plan for yet",
        hint="envman plans compressed-tensors checkpoints with 8-bit float weights (fp8)",
    )


def modalities(config: dict[str, Any], has_mmproj: bool = False) -> tuple[Modality, ...]:
    found = [Modality.TEXT]
    if has_mmproj or any(config.get(k) for k in VISION_KEYS):
        found.append(Modality.IMAGE)
    if any(config.get(k) for k in AUDIO_KEYS):
        found.append(Modality.AUDIO)
    return tuple(found)


def remote_code(config: dict[str, Any]) -> bool:
    """A config with ``auto_map`` names modelling code shipped in the repository."""
    return bool(config.get("auto_map"))


def dtype(config: dict[str, Any]) -> str | None:
    value = config.get("torch_dtype") or config.get("dtype") or text_config(config).get("torch_dtype")
    return str(value) if value else None
