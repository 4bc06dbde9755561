"""A model resolved from what the user named: the Model to plan, and where its facts came from."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from envman.matrix.schema import Artifact, Model


class Source(enum.StrEnum):
    CATALOG = "catalog"  # a curated entry of matrix.toml
    HUB = "hub"  # a Hugging Face repo id, read through huggingface_hub
    FOLDER = "folder"  # a local folder in HF layout
    GGUF = "gguf"  # a local .gguf file (or the first part of a split one)


@dataclass(frozen=True)
class ResolvedModel:
    model: Model
    source: Source
    spec: str  # what the user wrote
    repo: str | None = None  # the hub repo (catalog: the weights repo the user named, else None)
    revision: str | None = None  # hub: the commit the metadata was read at
    path: Path | None = None  # local folder or first GGUF part (hub offline: the cached snapshot)
    files: tuple[str, ...] = ()  # what was read: "config.json", "model.safetensors (header)" …
    parameters_from: str = "catalog"  # safetensors headers | GGUF tensor table | config shapes (estimate)
    chat_template: bool | None = None  # None: not read (catalog entries)
    architecture: str = ""  # the HF class or GGUF architecture the family was found by
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.model.name

    def describe(self) -> str:
        m = self.model
        where = self.repo or (str(self.path) if self.path else m.name)
        at = f"@{self.revision}" if self.revision else ""
        active = f", {m.active_params_b:.3g}B active ({m.experts_per_token} of {m.num_experts} experts)"
        lines = [
            f"{m.name}: {m.family or 'unknown family'} ({self.architecture or m.hf_architecture}), "
            f"from {self.source.value} {where}{at}",
            f"  parameters  {m.params_b:.3g}B ({self.parameters_from}){active if m.num_experts else ''}",
            f"  shapes      {m.layers} layers, hidden {m.hidden_size}, {m.attention_heads} heads, "
            f"{m.kv_heads} KV heads of {m.head_dim}, vocab {m.vocab_size}, context {m.max_context}",
        ]
        if m.sliding_window:
            lines.append(
                f"  attention   {m.sliding_layers} of {m.layers} layers keep a {m.sliding_window}-token window"
            )
        if m.kv_lora_rank is not None:
            lines.append(f"  attention   MLA: latent {m.kv_lora_rank} + rotary {m.qk_rope_head_dim} cached per layer")
        lines.append(f"  modalities  {'+'.join(x.value for x in m.modalities)}")
        if self.chat_template is not None:
            lines.append(f"  chat        {'template present' if self.chat_template else 'no chat template'}")
        if m.trust_remote_code:
            lines.append("  remote code auto_map in config.json: needs --trust-remote-code")
        for artifact in m.artifacts:
            lines.append(f"  weights     {_artifact_line(artifact)}")
        if self.files:
            lines.append(f"  read        {', '.join(self.files)}")
        lines.extend(f"  warning     {w}" for w in self.warnings)
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "spec": self.spec,
            "source": self.source.value,
            "repo": self.repo,
            "revision": self.revision,
            "path": str(self.path) if self.path else None,
            "files": list(self.files),
            "parameters_from": self.parameters_from,
            "chat_template": self.chat_template,
            "architecture": self.architecture or self.model.hf_architecture,
            "warnings": list(self.warnings),
            "model": model_json(self.model),
        }


def _artifact_line(a: Artifact) -> str:
    parts = [a.label]
    if a.quant_method:
        parts.append(f"quant_method {a.quant_method}")
    if a.dtype:
        parts.append(a.dtype)
    if a.size_bytes is not None:
        parts.append(f"{a.size_bytes / 1024**3:.2f} GiB")
    where = f"{a.repo}/{a.file}" if a.file and not a.local_only else (a.file or a.repo)
    if a.local_only and a.file:
        where = str(Path(a.repo) / a.file)
    extra = f" + {a.mmproj}" if a.mmproj else ""
    return f"{' '.join(parts)}  {where}{extra}"


def model_json(m: Model) -> dict[str, object]:
    """A Model as `envman models --json` prints it (catalog entries and resolved models alike)."""
    return {
        "name": m.name,
        "family": m.family,
        "hf_architecture": m.hf_architecture,
        "params_b": m.params_b,
        "active_params_b": m.active_params_b,
        "layers": m.layers,
        "hidden_size": m.hidden_size,
        "attention_heads": m.attention_heads,
        "kv_heads": m.kv_heads,
        "head_dim": m.head_dim,
        "vocab_size": m.vocab_size,
        "max_context": m.max_context,
        "sliding_window": m.sliding_window,
        "sliding_layers": m.sliding_layers,
        "kv_lora_rank": m.kv_lora_rank,
        "qk_rope_head_dim": m.qk_rope_head_dim,
        "num_experts": m.num_experts,
        "experts_per_token": m.experts_per_token,
        "modalities": [x.value for x in m.modalities],
        "trust_remote_code": m.trust_remote_code,
        "smoke": m.smoke,
        "artifacts": [
            {
                "format": a.format.value,
                "repo": a.repo,
                "quantization": a.quantization,
                "quant_method": a.quant_method,
                "file": a.file,
                "dtype": a.dtype,
                "local_only": a.local_only,
                "revision": a.revision,
                "size_bytes": a.size_bytes,
                "mmproj": a.mmproj,
            }
            for a in m.artifacts
        ],
    }
