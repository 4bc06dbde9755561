"""The GGUF form of a synthesized model, as llama.cpp's convert_hf_to_gguf.py would write it."""

from __future__ import annotations

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
    for hf_name, data in hf.items():
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
    writer.add_context_length(model.max_context)
    writer.add_embedding_length(model.hidden_size)
    writer.add_block_count(model.layers)
    writer.add_feed_forward_length(intermediate_size(model))
    writer.add_head_count(model.attention_heads)
    writer.add_head_count_kv(model.kv_heads)
    writer.add_key_length(model.head_dim)
    writer.add_value_length(model.head_dim)
    writer.add_rope_dimension_count(model.head_dim)
    writer.add_rope_freq_base(recipe.rope_theta)
    writer.add_layer_norm_rms_eps(recipe.rms_norm_eps)
    writer.add_vocab_size(model.vocab_size)
    extra: dict[str, Any] = recipe.gguf_metadata(model)
    for key, value in extra.items():
        if isinstance(value, float):
            writer.add_float32(f"{arch}.{key}", value)
        else:
            writer.add_uint32(f"{arch}.{key}", value)

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
        # as the converter's F16 output: vectors (norms, biases) stay F32, matrices become F16
        writer.add_tensor(name, data.astype(np.float32 if data.ndim == 1 else np.float16))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
