"""A model as its GGUF header describes it: architecture, shapes, quantization, parameters.

Split files (``NAME-00001-of-00003.gguf``) carry the metadata in every part and each part's
own tensors; the parameters are the sum over the parts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gguf import LlamaFileType

from envman.errors import UsageError
from envman.models.gguf_header import Header
from envman.models.shapes import Shapes, integer, sliding_layers
from envman.models.tensors import Count, TensorEntry, count_gguf

SPLIT = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
MMPROJ = re.compile(r"(^|[-_.])mmproj([-_.]|$)", re.IGNORECASE)
# llama.cpp's file type names, as quantization labels (LlamaFileType.MOSTLY_Q4_K_M -> Q4_K_M).
_RENAMED = {"MXFP4_MOE": "MXFP4"}


@dataclass(frozen=True)
class GgufFacts:
    architecture: str  # general.architecture
    shapes: Shapes
    quantization: str
    count: Count
    chat_template: bool
    name: str | None  # general.name


def part_names(filename: str) -> list[str]:
    """Every part of a split file (from any one part's name), or just the file."""
    match = SPLIT.match(filename)
    if not match:
        return [filename]
    count = int(match["count"])
    return [f"{match['stem']}-{n:05d}-of-{count:05d}.gguf" for n in range(1, count + 1)]


def group_label(filename: str) -> str:
    """A GGUF file's name without the split suffix and extension: ``m-Q4_K_M-00001-of-00002.gguf`` -> ``m-Q4_K_M``."""
    match = SPLIT.match(filename)
    return match["stem"] if match else filename.removesuffix(".gguf")


def is_mmproj(filename: str) -> bool:
    return bool(MMPROJ.search(filename.rsplit("/", 1)[-1]))


def quantization_label(header: Header) -> str:
    file_type = header.get("general.file_type")
    if isinstance(file_type, int) and file_type != LlamaFileType.GUESSED:
        try:
            name = LlamaFileType(file_type).name
        except ValueError:
            name = f"FILE_TYPE_{file_type}"
        name = name.removeprefix("MOSTLY_").removeprefix("ALL_")
        return _RENAMED.get(name, name)
    # No file type: the type most of the matrix weights are stored in.
    by_type: Counter[str] = Counter()
    for tensor in header.tensors:
        if len(tensor.shape) >= 2:
            by_type[tensor.type.name] += tensor.nbytes
    if not by_type:
        raise UsageError("the GGUF header names no file type and holds no weight matrices")
    return by_type.most_common(1)[0][0]


def facts(parts: Sequence[Header], where: str) -> GgufFacts:
    first = parts[0]
    arch = first.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise UsageError(f"{where} has no general.architecture", hint="the GGUF metadata is incomplete")
    kv: dict[str, Any] = {k.removeprefix(f"{arch}."): v for k, v in first.fields.items()}
    layers = integer(kv, where, "block_count")
    hidden = integer(kv, where, "embedding_length")
    heads = integer(kv, where, "attention.head_count")
    window = kv.get("attention.sliding_window")
    window = window if isinstance(window, int) and window > 0 else None
    pattern = kv.get("attention.sliding_window_pattern")
    if isinstance(pattern, list):  # one flag per layer, true where the layer is sliding-window
        sliding = sum(1 for flag in pattern[:layers] if flag)
    else:
        sliding = sliding_layers(arch, layers, None, pattern)
    lora = kv.get("attention.kv_lora_rank")
    rope = kv.get("rope.dimension_count")
    mla = isinstance(lora, int) and lora > 0 and isinstance(rope, int)
    rope_dim = rope if mla and isinstance(rope, int) else 0
    vocab = integer(kv, where, "vocab_size", default=first.array_lengths.get("tokenizer.ggml.tokens", 0))
    if not vocab:
        raise UsageError(f"{where} has no {arch}.vocab_size nor tokenizer.ggml.tokens")
    shapes = Shapes(
        layers=layers,
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=integer(kv, where, "attention.head_count_kv", default=heads),
        head_dim=integer(kv, where, "attention.key_length", default=hidden // max(heads, 1)),
        vocab_size=vocab,
        max_context=integer(kv, where, "context_length"),
        intermediate_size=integer(kv, where, "feed_forward_length", default=0),
        sliding_window=window,
        sliding_layers=sliding if window else 0,
        kv_lora_rank=lora if mla else None,
        qk_rope_head_dim=rope_dim,
        num_experts=integer(kv, where, "expert_count", default=0),
        experts_per_token=integer(kv, where, "expert_used_count", default=0),
    )
    entries = [TensorEntry(t.name, t.type.name, t.elements) for header in parts for t in header.tensors]
    label = first.get("general.name")
    return GgufFacts(
        architecture=arch,
        shapes=shapes,
        quantization=quantization_label(first),
        count=count_gguf(entries),
        chat_template=bool(first.get("tokenizer.chat_template")),
        name=label if isinstance(label, str) else None,
    )


def check_parts(parts: Sequence[Header], names: Sequence[str], sizes: Sequence[int | None]) -> None:
    """Each part is the one its name says and holds all the tensor data its header lists."""
    for header, name, size in zip(parts, names, sizes, strict=True):
        count = header.get("split.count")
        if len(names) > 1 and count is not None and count != len(names):
            raise UsageError(f"{name} says it is one of {count} parts, its name one of {len(names)}")
        if size is not None and size < header.data_end:
            raise UsageError(
                f"{name} is truncated: its header lists {header.data_end} bytes of tensors and data, "
                f"the file has {size}",
                hint="the download or copy stopped early; fetch the file again",
            )
