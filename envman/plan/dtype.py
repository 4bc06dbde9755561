"""The dtype a plan runs in: the weights' own, unless the host cannot run it."""

from __future__ import annotations

from envman.hardware.host import Host
from envman.matrix.schema import Accelerator, Artifact, Format, Matrix


def choose_dtype(matrix: Matrix, host: Host, artifact: Artifact) -> tuple[str | None, list[str]]:
    """The dtype to run ``artifact`` in on ``host``, and why (bfloat16 needs compute capability 8.0, …).

    None for formats whose dtype the engine takes from the file (GGUF, MLX).
    """
    if artifact.format in (Format.GGUF, Format.MLX):
        return None, []
    want = "float16" if artifact.format in (Format.AWQ, Format.GPTQ) else (artifact.dtype or "bfloat16")
    rule = matrix.dtypes.get(want)
    if rule is None:
        return want, []
    cc = host.min_compute_capability
    if (
        host.accelerator is Accelerator.CUDA
        and rule.min_compute_capability
        and cc is not None
        and cc < rule.min_compute_capability
        and rule.fallback
    ):
        return rule.fallback, [
            f"dtype {rule.fallback}: {want} needs compute capability {rule.min_compute_capability}, "
            f"{host.gpus[0].name} has {cc}"
        ]
    if host.accelerator is Accelerator.CPU and rule.cpu_flag and rule.cpu_flag not in host.cpu.flags:
        return "float32", [f"dtype float32: this CPU lacks {rule.cpu_flag}, so {want} would be emulated"]
    return want, [f"dtype {want}"]
