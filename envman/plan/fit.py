"""Memory fit: the longest context and smallest tensor-parallel layout whose estimate fits."""

from __future__ import annotations

from dataclasses import dataclass

from envman.hardware.host import GIB, Host
from envman.matrix.schema import Accelerator, Artifact, Engine, Matrix, Model
from envman.plan.memory import MemoryEstimate, kv_cache_bytes, weight_bytes
from envman.plan.request import PlanRequest

TP_SIZES = (1, 2, 4, 8, 16)
FALLBACK_CONTEXTS = (8192, 4096, 2048)


@dataclass(frozen=True)
class Fit:
    """A layout that fits (or, forced, the one closest to fitting)."""

    tensor_parallel_size: int
    estimate: MemoryEstimate
    wanted_context: int  # the context asked for before any reduction


def fit(
    matrix: Matrix,
    host: Host,
    engine: Engine,
    model: Model,
    artifact: Artifact,
    dtype: str | None,
    request: PlanRequest,
    force: bool = False,
) -> Fit | str:
    """The longest planned context and smallest TP that fit, or why none does."""
    planner = matrix.planner
    rule = matrix.dtypes.get(dtype) if dtype else None
    dtype_bytes = rule.bytes if rule else 2.0
    weights = weight_bytes(model, artifact, dtype_bytes, matrix)
    overhead = int(planner.overhead_gib * GIB)
    base = min(planner.default_max_model_len, model.max_context)
    fallbacks = [base] + [c for c in FALLBACK_CONTEXTS if c < base]
    contexts = [request.max_model_len] if request.max_model_len else fallbacks
    if host.accelerator is Accelerator.CUDA:
        utilization = request.memory_utilization or planner.gpu_memory_utilization
        gpu_count = len(host.gpus)
        label = host.gpus[0].name
        per_device = host.gpu_memory_bytes
        if engine.tensor_parallel:
            if request.tensor_parallel_size:  # checked against heads and GPUs in plan()
                sizes = [request.tensor_parallel_size]
            else:
                sizes = [n for n in TP_SIZES if n <= gpu_count and model.attention_heads % n == 0]
            layouts = [(n, n, per_device) for n in sizes]  # (tp, devices, bytes per device)
        else:
            # llama.cpp and transformers split layers over every GPU (no tensor parallelism).
            layouts = [(1, gpu_count, per_device)]
    else:
        utilization = request.memory_utilization or planner.cpu_memory_utilization
        label = "CPU RAM"
        layouts = [(1, 1, host.cpu.memory_total_bytes)]
    last: MemoryEstimate | None = None
    for tokens in contexts:
        for tp, devices, device_bytes in layouts:
            estimate = MemoryEstimate(
                weights_bytes=weights,
                kv_cache_bytes=kv_cache_bytes(model, tokens),
                overhead_bytes=overhead,
                devices=devices,
                device_label=label,
                available_bytes=int(device_bytes * utilization),
                utilization=utilization,
                max_model_len=tokens,
            )
            if last is None or (tokens == contexts[0]):
                last = estimate
            if estimate.fits:
                return Fit(tp, estimate, contexts[0])
    assert last is not None
    if force:
        tp, devices, _ = layouts[-1]
        return Fit(tp, last, contexts[0])
    return f"does not fit: {last.explain()}" + _more_gpus_hint(
        matrix, host, model, weights, overhead, contexts[0], layouts
    )


def _more_gpus_hint(
    matrix: Matrix,
    host: Host,
    model: Model,
    weights: int,
    overhead: int,
    tokens: int,
    layouts: list[tuple[int, int, int]],
) -> str:
    if host.accelerator is not Accelerator.CUDA or not layouts:
        return ""
    tp_engine = len(layouts) > 1 or layouts[0][0] > 1 or len(host.gpus) == 1
    per_device = host.gpu_memory_bytes * (matrix.planner.gpu_memory_utilization)
    for n in TP_SIZES:
        if n <= len(host.gpus) or model.attention_heads % n:
            continue
        need = (weights + kv_cache_bytes(model, tokens)) / n + overhead
        if need <= per_device:
            what = f"tensor_parallel_size {n}" if tp_engine else f"{n} GPUs"
            return f"; {n}x {host.gpus[0].name} would fit ({what})"
    return ""
