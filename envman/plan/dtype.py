"""The dtype a plan runs in: the weights' own, unless the host or the engine release cannot run it.

Two rules meet here: the GPU's (bfloat16 needs compute capability 8.0: ``[dtypes]``) and the
engine release's own (vLLM 0.9.1 on refuses float16 for gemma2, gemma3 …:
``[engine_rules.vllm.refused_dtypes]``, read from its config code). Where both bite (a gemma3
on a T4 with vLLM 0.19.1) the plan runs float32, whose memory the fit counts, and names the
newest release that allows float16 as the other way out.
"""

from __future__ import annotations

from packaging.version import Version

from envman.hardware.host import Host
from envman.matrix.schema import Accelerator, Artifact, Format, Matrix


def choose_dtype(
    matrix: Matrix,
    host: Host,
    artifact: Artifact,
    *,
    engine: str | None = None,
    version: Version | None = None,
    model_types: tuple[str, ...] = (),
) -> tuple[str | None, list[str]]:
    """The dtype to run ``artifact`` in on ``host``, and why (bfloat16 needs compute capability 8.0, …).

    None for formats whose dtype the engine takes from the file (GGUF, MLX). With ``engine``
    and ``version``, a float16 the release refuses for one of ``model_types`` becomes float32.
    """
    if artifact.format in (Format.GGUF, Format.MLX):
        return None, []
    want = "float16" if artifact.format in (Format.AWQ, Format.GPTQ) else (artifact.dtype or "bfloat16")
    if want == "float16" and artifact.format in (Format.AWQ, Format.GPTQ) and _has_bfloat16(matrix, host):
        refused = float16_refusal(matrix, engine, version, model_types)
        if refused is not None:  # the Marlin kernels also take bfloat16 activations
            return "bfloat16", [
                f"dtype bfloat16: {refused}; {artifact.format.value}_marlin takes bfloat16 "
                f"(get_supported_act_dtypes, vllm-0.19.1 {artifact.format.value}_marlin.py)"
            ]
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
        why = f"{want} needs compute capability {rule.min_compute_capability}, {host.gpus[0].name} has {cc}"
        refused = float16_refusal(matrix, engine, version, model_types) if rule.fallback == "float16" else None
        if refused is not None and artifact.format is Format.PYTORCH:
            return "float32", [f"dtype float32: {why}, and {refused}"]
        return rule.fallback, [f"dtype {rule.fallback}: {why}"]
    if host.accelerator is Accelerator.CPU and rule.cpu_flag and rule.cpu_flag not in host.cpu.flags:
        return "float32", [f"dtype float32: this CPU lacks {rule.cpu_flag}, so {want} would be emulated"]
    return want, [f"dtype {want}"]


def _has_bfloat16(matrix: Matrix, host: Host) -> bool:
    rule = matrix.dtypes.get("bfloat16")
    cc = host.min_compute_capability
    if host.accelerator is not Accelerator.CUDA or rule is None or cc is None:
        return False
    return rule.min_compute_capability is None or cc >= rule.min_compute_capability


def float16_refusal(
    matrix: Matrix, engine: str | None, version: Version | None, model_types: tuple[str, ...]
) -> str | None:
    """Why the engine release refuses float16 for this model type, with the newest release that
    allows it; None where it allows float16 or was never probed."""
    rules = matrix.engine_rules.get(engine or "")
    if rules is None or version is None or not rules.knows(version):
        return None
    refused = rules.refusal(version, model_types, "float16")
    if refused is None:
        return None
    older = _newest_allowing(matrix, engine or "", version, model_types)
    way_out = f"; {engine} {older} is the newest release that allows float16" if older else ""
    return (
        f"{engine} {version} refuses float16 for model type {refused.model_type} "
        f"('{refused.reason}', {refused.evidence.split(';')[-1].strip()}){way_out}"
    )


def _newest_allowing(matrix: Matrix, engine: str, below: Version, model_types: tuple[str, ...]) -> Version | None:
    rules = matrix.engine_rules[engine]
    probed = sorted(
        {v for (e, _variant, text), _r in matrix.build_requirements.items() if e == engine for v in [Version(text)]}
    )
    allowing = [v for v in probed if v < below and rules.knows(v) and rules.refusal(v, model_types, "float16") is None]
    return max(allowing) if allowing else None
