"""Memory estimates, checked against numbers worked out by hand for gemma-3-27b-it."""

from __future__ import annotations

import dataclasses

import pytest

from envman.matrix.schema import Artifact, Format, Matrix, Model
from envman.plan.memory import GIB, MemoryEstimate, kv_cache_bytes, weight_bytes

# gemma-3-27b-it text decoder: 62 layers, 16 KV heads of 128; 27.4e9 parameters; 262208 x 5376 embeddings.
KV_BYTES_PER_TOKEN = 2 * 62 * 16 * 128 * 2  # K and V, every layer, 2 bytes each = 507_904
EMBEDDINGS = 262_208 * 5_376  # 1_409_630_208 parameters, kept in 16 bits by non-GGUF quantized formats


@pytest.fixture
def gemma(real_matrix: Matrix) -> Model:
    model = real_matrix.models["gemma-3-27b-it"]
    shape = (model.params_b, model.layers, model.kv_heads, model.head_dim, model.vocab_size, model.hidden_size)
    assert shape == (27.4, 62, 16, 128, 262_208, 5_376), "the hand-computed numbers below assume this shape"
    return model


def artifact(model: Model, label: str) -> Artifact:
    [found] = [a for a in model.artifacts if a.label == label]
    return found


def test_kv_cache_bytes(gemma: Model) -> None:
    assert KV_BYTES_PER_TOKEN == 507_904
    assert kv_cache_bytes(gemma, 1) == KV_BYTES_PER_TOKEN
    assert kv_cache_bytes(gemma, 16_384) == 8_321_499_136  # 7.75 GiB
    assert kv_cache_bytes(gemma, 0) == 0


@pytest.mark.parametrize(
    ("label", "dtype_bytes", "expected"),
    [
        ("pytorch", 2.0, 54_800_000_000),  # 27.4e9 x 2 bytes
        ("pytorch", 4.0, 109_600_000_000),  # float32 on a CPU without bf16
        ("gguf:Q4_K_M", 2.0, 16_611_250_000),  # 27.4e9 x 4.85 / 8: GGUF quantizes embeddings too
        ("gguf:Q8_0", 2.0, 29_112_500_000),  # 27.4e9 x 8.5 / 8
        ("gguf:Q4_0", 2.0, 15_412_500_000),  # 27.4e9 x 4.5 / 8
        ("bnb:4bit", 2.0, (27_400_000_000 - EMBEDDINGS) * 9 // 16 + EMBEDDINGS * 2),  # 4.5 bits + bf16 embeddings
    ],
)
def test_weight_bytes(real_matrix: Matrix, gemma: Model, label: str, dtype_bytes: float, expected: int) -> None:
    assert weight_bytes(gemma, artifact(gemma, label), dtype_bytes, real_matrix) == pytest.approx(expected, abs=1)


def test_an_unlisted_gguf_quantization_uses_the_gguf_default(real_matrix: Matrix, gemma: Model) -> None:
    unlisted = Artifact(format=Format.GGUF, repo="x/y", quantization="IQ2_XXS")
    default = real_matrix.quant_spec(Format.GGUF, None)
    assert default is not None
    assert weight_bytes(gemma, unlisted, 2.0, real_matrix) == pytest.approx(27.4e9 * default.bits_per_weight / 8, abs=1)


def test_embeddings_never_exceed_the_parameters(real_matrix: Matrix, gemma: Model) -> None:
    # 100k parameters but 1.4e9 "embedding" parameters by shape: everything is counted at 16 bits, once.
    tiny = dataclasses.replace(gemma, params_b=0.0001)
    assert weight_bytes(tiny, artifact(gemma, "bnb:4bit"), 2.0, real_matrix) == 200_000


def estimate(**changes: object) -> MemoryEstimate:
    base = MemoryEstimate(
        weights_bytes=10 * GIB,
        kv_cache_bytes=4 * GIB,
        overhead_bytes=2 * GIB,
        devices=2,
        device_label="A100-40GB",
        available_bytes=9 * GIB,
        utilization=0.9,
        max_model_len=8192,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_per_device_need_splits_weights_and_cache_but_not_overhead() -> None:
    assert estimate().per_device_bytes == (10 + 4) * GIB // 2 + 2 * GIB


@pytest.mark.parametrize(("available", "fits"), [(9 * GIB, True), (9 * GIB - 1, False), (80 * GIB, True)])
def test_fits_when_the_need_is_at_most_what_is_available(available: int, fits: bool) -> None:
    assert estimate(available_bytes=available).fits is fits


def test_explain_for_gpus() -> None:
    assert estimate().explain() == (
        "needs 9.0 GiB per GPU (weights 5.0 + KV cache 2.0 for 8192 tokens + overhead 2.0); "
        "2x A100-40GB gives 9.0 GiB at 90% utilisation"
    )


def test_explain_for_cpu_ram() -> None:
    cpu = estimate(devices=1, device_label="CPU RAM", available_bytes=int(19.2 * GIB), utilization=0.8)
    assert cpu.explain() == (
        "needs 16.0 GiB of RAM (weights 10.0 + KV cache 4.0 for 8192 tokens + overhead 2.0); "
        "this host gives 19.2 GiB at 80% utilisation"
    )


def test_to_json() -> None:
    assert estimate().to_json() == {
        "weights_gib": 10.0,
        "kv_cache_gib": 4.0,
        "overhead_gib_per_device": 2.0,
        "devices": 2,
        "nodes": 1,
        "needed_gib_per_device": 9.0,
        "available_gib_per_device": 9.0,
        "utilization": 0.9,
        "fits": True,
    }


# Exact KV caches where the architecture says how its layers attend (shapes read by envman.models).


def test_gemma3_sliding_layers_keep_only_their_window(gemma: Model) -> None:
    # Gemma 3 27B: 62 layers, 5 of every 6 slide (62 - 62 // 6 = 52) with a 1024-token window.
    sliding = dataclasses.replace(gemma, sliding_window=1024, sliding_layers=52)
    per_layer_token = KV_BYTES_PER_TOKEN // 62  # 8192
    assert kv_cache_bytes(sliding, 16_384) == per_layer_token * (10 * 16_384 + 52 * 1_024) == 1_778_384_896
    assert kv_cache_bytes(sliding, 1_000) == kv_cache_bytes(gemma, 1_000)  # within the window: all layers alike
    assert kv_cache_bytes(sliding, 16_384) < kv_cache_bytes(gemma, 16_384) / 4


def test_gemma2_every_other_layer_slides(gemma: Model) -> None:
    # Gemma 2 9B: 42 layers, 8 KV heads of 256, window 4096; layers 0, 2, 4 … slide.
    g2 = dataclasses.replace(gemma, layers=42, kv_heads=8, head_dim=256, sliding_window=4096, sliding_layers=21)
    per_layer_token = 2 * 8 * 256 * 2
    assert kv_cache_bytes(g2, 8192) == per_layer_token * (21 * 8192 + 21 * 4096)


def test_mla_caches_one_latent_per_layer(gemma: Model) -> None:
    # DeepSeek V3: 61 layers, kv_lora_rank 512 + qk_rope_head_dim 64, 2 bytes: 70,272 bytes a token,
    # not K and V of 128 heads of 192 (5,996,544 bytes a token).
    v3 = dataclasses.replace(gemma, layers=61, kv_heads=128, head_dim=192, kv_lora_rank=512, qk_rope_head_dim=64)
    assert kv_cache_bytes(v3, 1) == 61 * 576 * 2 == 70_272
    assert kv_cache_bytes(dataclasses.replace(v3, kv_lora_rank=None), 1) == 2 * 61 * 128 * 192 * 2


def test_moe_weights_count_every_expert(real_matrix: Matrix, gemma: Model) -> None:
    moe = dataclasses.replace(gemma, params_b=30.5, active_params_b=3.3, num_experts=128, experts_per_token=8)
    assert weight_bytes(moe, artifact(gemma, "pytorch"), 2.0, real_matrix) == 61_000_000_000


def test_stored_files_are_the_weights_of_quantized_formats(real_matrix: Matrix, gemma: Model) -> None:
    read = Artifact(format=Format.GGUF, repo="x/y", quantization="Q4_K_M", size_bytes=16_546_404_736)
    assert weight_bytes(gemma, read, 2.0, real_matrix) == 16_546_404_736
    # full precision is served at the dtype chosen, whatever the file holds
    full = Artifact(format=Format.PYTORCH, repo="x/y", dtype="bfloat16", size_bytes=54_800_000_000)
    assert weight_bytes(gemma, full, 4.0, real_matrix) == 109_600_000_000


def test_data_parallel_replicas_hold_their_own_kv_cache_and_replicated_weights() -> None:
    # 16 GPUs, 2 data-parallel replicas of 8: 2 GiB of the 10 replicated, 8 sharded over all 16.
    dp = estimate(devices=16, replicas=2, replicated_weights_bytes=2 * GIB, nodes=2, available_bytes=10 * GIB)
    assert dp.per_device_bytes == (8 * GIB + (2 * GIB + 4 * GIB) * 2) // 16 + 2 * GIB
    assert dp.explain().startswith("needs 3.2 GiB per GPU (weights 0.8 + KV cache 0.5 for 8192 tokens")
    assert "2 nodes of 8x A100-40GB gives 10.0 GiB" in dp.explain()
