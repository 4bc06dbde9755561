"""Memory estimates: weights + KV cache + overhead, against what a device offers.

Weights: the bytes of the files when they were read (a GGUF, a quantized checkpoint), else
parameters x bytes per weight; quantized formats other than GGUF keep the embeddings in 16
bits. MoE models load every expert: the total parameter count, never the active one (that
only sets the compute per token).

KV cache, exact where the model's metadata says how its layers attend:
- full attention: K and V of every token, for every layer and KV head;
- sliding-window layers (Gemma 2: every other layer; Gemma 3: 5 of every 6; any config with
  ``layer_types``) keep at most their window;
- MLA (DeepSeek V2/V3) caches one compressed latent (``kv_lora_rank``) plus the rotary key
  part (``qk_rope_head_dim``) per layer and token, not per head; engines without MLA
  kernels expand it, so this is the MLA engines' number.
A model without those facts (the catalog's entries) is sized at full attention on every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from envman.matrix.schema import Artifact, Format, Matrix, Model

GIB = 1024**3
KV_BYTES = 2  # fp16/bf16 KV cache


def weight_bytes(model: Model, artifact: Artifact, dtype_bytes: float, matrix: Matrix) -> int:
    params = model.params_b * 1e9
    if artifact.format is Format.PYTORCH:
        return int(params * dtype_bytes)
    if artifact.size_bytes is not None:
        return artifact.size_bytes  # stored quantized: what is loaded is what is on disk
    spec = matrix.quant_spec(artifact.format, artifact.quantization)
    bits = spec.bits_per_weight if spec else 16.0
    if artifact.format is Format.GGUF:
        return int(params * bits / 8)
    embeddings = min(params, float(model.vocab_size * model.hidden_size))
    return int((params - embeddings) * bits / 8 + embeddings * 2)


def kv_cache_bytes(model: Model, tokens: int) -> int:
    """Keys and values (or MLA latents) for ``tokens`` tokens over every layer."""
    if model.kv_lora_rank is not None:
        return model.layers * (model.kv_lora_rank + model.qk_rope_head_dim) * KV_BYTES * tokens
    per_token = 2 * model.kv_heads * model.head_dim * KV_BYTES
    sliding = min(model.sliding_layers, model.layers) if model.sliding_window else 0
    windowed = min(tokens, model.sliding_window or tokens)
    return per_token * ((model.layers - sliding) * tokens + sliding * windowed)


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int  # per device
    devices: int  # GPUs the model is spread over (1 on a CPU)
    device_label: str  # "A100-40GB", "CPU RAM"
    available_bytes: int  # per device, at the utilisation share
    utilization: float
    max_model_len: int
    nodes: int = 1  # the devices are spread over this many identical nodes
    # Data parallelism (MoE over nodes): each of ``replicas`` ranks holds its own copy of the
    # replicated weights and its own KV cache; only the rest (the experts) is sharded over every device.
    replicas: int = 1
    replicated_weights_bytes: int = 0

    @property
    def per_device_bytes(self) -> int:
        sharded = self.weights_bytes - self.replicated_weights_bytes
        per_replica = (self.replicated_weights_bytes + self.kv_cache_bytes) * self.replicas
        return (sharded + per_replica) // self.devices + self.overhead_bytes

    @property
    def fits(self) -> bool:
        return self.per_device_bytes <= self.available_bytes

    def explain(self) -> str:
        need = self.per_device_bytes / GIB
        where = "per GPU" if self.device_label != "CPU RAM" else "of RAM"
        shard = self.devices // self.replicas
        weights = (self.weights_bytes - self.replicated_weights_bytes) / self.devices
        weights += self.replicated_weights_bytes / shard
        parts = (
            f"weights {weights / GIB:.1f} + KV cache "
            f"{self.kv_cache_bytes / GIB / shard:.1f} for {self.max_model_len} tokens + overhead "
            f"{self.overhead_bytes / GIB:.1f}"
        )
        devices = f"{self.devices}x {self.device_label}" if self.device_label != "CPU RAM" else "this host"
        if self.nodes > 1:
            devices = f"{self.nodes} nodes of {self.devices // self.nodes}x {self.device_label}"
        return (
            f"needs {need:.1f} GiB {where} ({parts}); {devices} gives {self.available_bytes / GIB:.1f} GiB "
            f"at {self.utilization:.0%} utilisation"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "weights_gib": round(self.weights_bytes / GIB, 2),
            "kv_cache_gib": round(self.kv_cache_bytes / GIB, 2),
            "overhead_gib_per_device": round(self.overhead_bytes / GIB, 2),
            "devices": self.devices,
            "nodes": self.nodes,
            "needed_gib_per_device": round(self.per_device_bytes / GIB, 2),
            "available_gib_per_device": round(self.available_bytes / GIB, 2),
            "utilization": self.utilization,
            "fits": self.fits,
        }
