"""The GGUF form of a synthesized model, as llama.cpp's convert_hf_to_gguf.py would write it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envman.synth.architectures import Recipe, intermediate_size
from envman.synth.vocab import CHAT_TEMPLATE, Vocab

if TYPE_CHECKING:
    from envman.matrix.schema import Model
    from envman.synth.weights import F32

MOSTLY_F16 = 1  # gguf.LlamaFileType.MOSTLY_F16
GENERAL_NAME = "envman synthesized model"


def permute_rows(weight: F32, heads: int) -> F32:
    """convert_hf_to_gguf.py's LlamaModel.permute: HF's half-split RoPE rows to interleaved pairs."""
    rows = weight.shape[0]
    result: F32 = weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    return result


def gguf_tensors(model: Model, recipe: Recipe, hf: Mapping[str, F32]) -> dict[str, F32]:
    """The HF tensors under llama.cpp's names, transformed as the converter does."""
    import gguf

    arch = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == recipe.gguf_arch)
    names = gguf.get_tensor_name_map(arch, model.layers)
    out: dict[str, F32] = {}
    for hf_name, data in _merged(recipe, hf).items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise AssertionError(f"no GGUF name for {hf_name} in {recipe.gguf_arch}")
        if recipe.permute_qk and hf_name.endswith("self_attn.q_proj.weight"):
            data = permute_rows(data, model.attention_heads)
        elif recipe.permute_qk and hf_name.endswith("self_attn.k_proj.weight"):
            data = permute_rows(data, model.kv_heads)
        if recipe.gemma_norms and hf_name.endswith("norm.weight"):
            data = data + 1.0  # Gemma2Model/Gemma3Model.modify_tensors: llama.cpp multiplies by w directly
        out[name] = data
    return out


EXPERT = re.compile(r"(?P<block>.*\.experts)\.(?P<index>\d+)\.(?P<name>\w+)\.weight")


def _merged(recipe: Recipe, hf: Mapping[str, F32]) -> dict[str, F32]:
    """Per-expert tensors stacked into one [experts, out, in] tensor each, as llama.cpp takes them."""
    import numpy as np

    out: dict[str, F32] = {}
    experts: dict[str, list[tuple[int, F32]]] = {}
    for hf_name, data in hf.items():
        match = EXPERT.fullmatch(hf_name)
        if match:
            experts.setdefault(f"{match['block']}.{match['name']}.weight", []).append((int(match["index"]), data))
        elif hf_name.endswith("mlp.experts.gate_up_proj"):  # gpt-oss: [experts, in, out], gate/up interleaved
            block = hf_name.removesuffix("gate_up_proj")
            out[block + "gate_proj.weight"] = np.ascontiguousarray(data[:, :, 0::2].transpose(0, 2, 1))
            out[block + "up_proj.weight"] = np.ascontiguousarray(data[:, :, 1::2].transpose(0, 2, 1))
        elif hf_name.endswith("mlp.experts.gate_up_proj_bias"):
            block = hf_name.removesuffix("gate_up_proj_bias")
            out[block + "gate_proj.bias"] = np.ascontiguousarray(data[:, 0::2])
            out[block + "up_proj.bias"] = np.ascontiguousarray(data[:, 1::2])
        elif hf_name.endswith("mlp.experts.down_proj"):
            out[hf_name + ".weight"] = np.ascontiguousarray(data.transpose(0, 2, 1))
        elif hf_name.endswith("mlp.experts.down_proj_bias"):
            out[hf_name.removesuffix("_bias") + ".bias"] = data
        elif hf_name.endswith("self_attn.sinks"):
            out[hf_name + ".weight"] = data
        elif hf_name.endswith("mlp.gate.e_score_correction_bias"):  # the gguf map knows it as "...correction.bias"
            out[hf_name.removesuffix("_bias") + ".bias"] = data
        else:
            out[hf_name] = data
    for name, parts in experts.items():
        out[name] = np.stack([data for _, data in sorted(parts, key=lambda part: part[0])])
    return out


def write(
    path: Path, model: Model, recipe: Recipe, vocab: Vocab, hf: Mapping[str, F32], eos_ids: tuple[int, ...]
) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(path, recipe.gguf_arch)
    arch = recipe.gguf_arch
    # Not the model's name: llama.cpp gives special tokens Phi-3 quirks when general.name holds "phi3"
    # (strips the whitespace after them and looks up "</s>", which this vocabulary lacks).
    writer.add_name(GENERAL_NAME)
    writer.add_basename(model.name)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(MOSTLY_F16)
    llm, attention, rope = gguf.Keys.LLM, gguf.Keys.Attention, gguf.Keys.Rope
    common: dict[str, Any] = {
        llm.CONTEXT_LENGTH: model.max_context,
        llm.EMBEDDING_LENGTH: model.hidden_size,
        llm.BLOCK_COUNT: model.layers,
        llm.FEED_FORWARD_LENGTH: intermediate_size(model),
        attention.HEAD_COUNT: model.attention_heads,
        attention.HEAD_COUNT_KV: model.kv_heads,
        attention.KEY_LENGTH: model.head_dim,
        attention.VALUE_LENGTH: model.head_dim,
        rope.DIMENSION_COUNT: model.head_dim,
        rope.FREQ_BASE: float(recipe.rope_theta),
        attention.LAYERNORM_RMS_EPS: float(recipe.rms_norm_eps),
        llm.VOCAB_SIZE: model.vocab_size,
    }
    extra = {f"{{arch}}.{key}": value for key, value in recipe.gguf_metadata(model).items()}
    for key, value in (common | extra).items():  # the common keys first, in this order; a recipe may override
        name = key.format(arch=arch)
        if isinstance(value, bool):
            writer.add_bool(name, value)
        elif isinstance(value, float):
            writer.add_float32(name, value)
        elif isinstance(value, str):
            writer.add_string(name, value)
        else:
            writer.add_uint32(name, value)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(recipe.pre_tokenizer)  # the split regex tokenizer.json applies
    writer.add_token_list(list(vocab.tokens))
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges([f"{a} {b}" for a, b in vocab.merges])
    writer.add_unk_token_id(vocab.id("<unk>"))
    writer.add_bos_token_id(vocab.id("<bos>"))
    writer.add_eos_token_id(eos_ids[0])
    writer.add_pad_token_id(vocab.id("<pad>"))
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    for name, data in gguf_tensors(model, recipe, hf).items():
        # as the converter's F16 output: vectors (norms, biases) stay F32, matrices become F16; so do the
        # experts' [experts, width] biases (llama.cpp's CPU add takes only F32 there: "GGML_ASSERT(src1->type
        # == GGML_TYPE_F32) failed", gpt-oss on xllamacpp 2026.10.11549)
        vector = data.ndim == 1 or name.endswith(".bias")
        writer.add_tensor(name, data.astype(np.float32 if vector else np.float16))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
