"""A schema.Model from what was read: a config.json with its tensor table, or GGUF headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from envman.matrix.schema import Artifact, Format, Matrix, Modality, Model
from envman.models import family as families
from envman.models import hf_config
from envman.models.gguf_model import GgufFacts
from envman.models.shapes import Shapes
from envman.models.tensors import Count, TensorEntry, count_safetensors


@dataclass(frozen=True)
class Assembled:
    model: Model
    parameters_from: str
    architecture: str
    warnings: tuple[str, ...]


def _family(
    matrix: Matrix, where: str, archs: Sequence[str], types: Sequence[str], allow_unknown: bool
) -> tuple[str, list[str]]:
    found = families.find(matrix, archs, types)
    if found is not None:
        return found.name, []
    error = families.unknown(matrix, where, archs, types)
    if not allow_unknown:
        raise error
    return "", [error.message]


def _model(
    name: str, family: str, hf_arch: str, shapes: Shapes, count: Count, artifacts: Sequence[Artifact], **more: Any
) -> Model:
    return Model(
        name=name,
        family=family,
        hf_architecture=hf_arch,
        params_b=count.parameters / 1e9,
        active_params_b=count.active(shapes.num_experts, shapes.experts_per_token) / 1e9,
        layers=shapes.layers,
        hidden_size=shapes.hidden_size,
        attention_heads=shapes.attention_heads,
        kv_heads=shapes.kv_heads,
        head_dim=shapes.head_dim,
        vocab_size=shapes.vocab_size,
        max_context=shapes.max_context,
        artifacts=tuple(artifacts),
        sliding_window=shapes.sliding_window,
        sliding_layers=shapes.sliding_layers,
        kv_lora_rank=shapes.kv_lora_rank,
        qk_rope_head_dim=shapes.qk_rope_head_dim,
        num_experts=shapes.num_experts,
        experts_per_token=shapes.experts_per_token,
        **more,
    )


def from_config(
    matrix: Matrix,
    *,
    name: str,
    config: dict[str, Any],
    where: str,
    repo: str,
    tensors: Sequence[TensorEntry] | None,
    weights_bytes: int | None,
    local: bool,
    revision: str | None = None,
    gguf: Sequence[Artifact] = (),
    allow_unknown: bool = False,
) -> Assembled:
    """``tensors`` None: no safetensors header to read (``*.bin`` weights, an offline cache)."""
    archs, types = hf_config.architectures(config), hf_config.model_types(config)
    family, warnings = _family(matrix, where, archs, types, allow_unknown)
    shapes = hf_config.shapes(config, where)
    quant = hf_config.quantization(config, where)
    fmt = quant.format if quant else Format.PYTORCH
    if tensors is not None:
        count = count_safetensors(tensors, fmt, quant.bits if quant else None)
        parameters_from = "safetensors headers"
    else:
        estimate = shapes.estimated_parameters()
        count = Count(estimate, 0, None)
        parameters_from = "config shapes (estimate)"
        warnings.append(
            f"parameter count estimated from the config's shapes ({estimate / 1e9:.3g}B): no safetensors header to read"
        )
    hf_weights = Artifact(
        format=fmt,
        repo=repo,
        quantization=quant.quantization if quant else None,
        quant_method=quant.quant_method if quant else None,
        dtype=count.dtype or hf_config.dtype(config),
        local_only=local,
        revision=revision,
        size_bytes=weights_bytes,
    )
    remote = hf_config.remote_code(config)
    if remote:
        warnings.append(f"{where} names its own modelling code (auto_map): review it and pass --trust-remote-code")
    model = _model(
        name,
        family,
        archs[0] if archs else "",
        shapes,
        count,
        [hf_weights, *gguf],
        modalities=hf_config.modalities(config, has_mmproj=any(a.mmproj for a in gguf)),
        trust_remote_code=remote,
        evidence=f"read from {where}",
    )
    return Assembled(model, parameters_from, archs[0] if archs else ", ".join(types), tuple(warnings))


def from_gguf(
    matrix: Matrix, *, name: str, facts: GgufFacts, where: str, artifacts: Sequence[Artifact], allow_unknown: bool
) -> Assembled:
    family, warnings = _family(matrix, where, [facts.architecture], [], allow_unknown)
    modalities = (Modality.TEXT, Modality.IMAGE) if any(a.mmproj for a in artifacts) else (Modality.TEXT,)
    model = _model(
        name, family, "", facts.shapes, facts.count, artifacts, modalities=modalities, evidence=f"read from {where}"
    )
    return Assembled(model, "GGUF tensor table", f"gguf:{facts.architecture}", tuple(warnings))
