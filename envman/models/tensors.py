"""Parameter counts and dtype from a model's tensor table (safetensors headers or a GGUF header).

Quantized checkpoints store weights packed and add side tensors; the count undoes both:
AWQ/GPTQ ``qweight`` int32 holds 32/bits weights, bitsandbytes 4-bit and MXFP4 ``_blocks``
uint8 hold two; scales, zeros, group indices and absmax are not parameters. MoE expert
tensors (``.experts.`` in HF names, ``_exps`` in GGUF names) are counted apart, so the
active parameters follow from the experts a token uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from envman.matrix.schema import Format

DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64"}
SIDE_SUFFIXES = (
    ".qzeros", ".scales", ".g_idx", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".SCB",
    ".weight_format", "_scale", "_scale_inv", "_scales", ".input_scale", ".weight_scale", ".zeros",
)  # fmt: skip


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str  # safetensors dtype (BF16, I32 …) or ggml type name (Q4_K, F16 …)
    elements: int


@dataclass(frozen=True)
class Count:
    parameters: int
    expert_parameters: int
    dtype: str | None  # the floating dtype most weights are stored in (None for GGUF quantizations)

    def active(self, experts: int, experts_per_token: int) -> int:
        if not experts or not experts_per_token or not self.expert_parameters:
            return self.parameters
        unused = self.expert_parameters * (experts - experts_per_token) // experts
        return self.parameters - unused


def count_safetensors(tensors: Iterable[TensorEntry], fmt: Format, bits: int | None) -> Count:
    total = experts = 0
    by_dtype: Counter[str] = Counter()
    quantized = fmt is not Format.PYTORCH
    for tensor in tensors:
        name = tensor.name
        if quantized and (name.endswith(SIDE_SUFFIXES) or ".quant_state" in name):
            continue
        elements = tensor.elements
        if quantized and tensor.dtype == "I32" and name.endswith(".qweight"):
            elements *= 32 // (bits or 4)
        elif tensor.dtype == "U8" and (fmt is Format.BNB or name.endswith("_blocks")):
            elements *= 2
        total += elements
        if ".experts." in name and "shared_expert" not in name:
            experts += elements
        if tensor.dtype in DTYPES:
            by_dtype[tensor.dtype] += elements
    dtype = DTYPES[by_dtype.most_common(1)[0][0]] if by_dtype else None
    return Count(total, experts, dtype)


def count_gguf(tensors: Iterable[TensorEntry]) -> Count:
    total = experts = 0
    for tensor in tensors:
        total += tensor.elements
        if "_exps" in tensor.name:
            experts += tensor.elements
    return Count(total, experts, None)
