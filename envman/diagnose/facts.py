"""Fixes computed from the matrix's facts, for signatures whose message names one.

A static fix says what kind of thing to do; these say which release: the newest build whose
CUDA runtime the driver of ``found version 12040`` runs (``host_requirements``), the newest
release with kernels for each GPU of the table, the releases that allow float16 for a model
type and the plugin a quantization method moved to (``engine_rules``).
"""

from __future__ import annotations

import re

from packaging.version import Version

from envman.matrix.schema import Matrix


def computed_fix(matrix: Matrix, signature_id: str, match: re.Match[str], engine: str | None) -> str | None:
    """A fix naming releases, or None where the facts add nothing to the signature's own."""
    groups = match.groupdict()
    if signature_id == "cuda-driver-too-old" and groups.get("found"):
        return _driver_fix(matrix, int(groups["found"]), engine)
    if signature_id == "float16-refused" and groups.get("model_type"):
        return _float16_fix(matrix, groups["model_type"], engine or "vllm")
    if signature_id == "unknown-quantization-method" and groups.get("method"):
        return _method_fix(matrix, groups["method"].rstrip(".,;"), engine or "vllm")
    if signature_id == "no-kernel-image":
        return _kernels_fix(matrix, engine)
    return None


def _builds(matrix: Matrix, engine: str | None) -> list[tuple[str, Version, str | None, tuple[str, ...]]]:
    """``(engine, version, cuda_runtime, SASS every core library has)`` of each probed CUDA build."""
    from envman.plan.requirements import requirements_for

    out = []
    for e, variant, text in matrix.build_requirements:
        if (engine and e != engine) or variant != "cuda":
            continue
        needs = requirements_for(matrix, e, text, variant)
        if needs is not None:
            out.append((e, Version(text), needs.cuda_runtime, needs.sass))
    return sorted(out, key=lambda b: (b[0], b[1]))


def _driver_fix(matrix: Matrix, found: int, engine: str | None) -> str | None:
    """``found version 12040``: the driver runs CUDA 12.4, and every 12.x runtime by minor
    version compatibility (NVIDIA's rule kept in ``cuda_drivers``), no 13.x."""
    major, minor = found // 1000, found % 1000 // 10
    runs = [b for b in _builds(matrix, engine) if b[2] is not None and int(b[2].split(".")[0]) <= major]
    rule = matrix.cuda_drivers.get(major + 1)
    upgrade = (
        f"upgrade the driver to >= {rule.min_driver} for CUDA {major + 1}.x builds" if rule else "upgrade the driver"
    )
    if not runs:
        return f"the driver supports CUDA {major}.{minor}: {upgrade}"
    newest: dict[str, tuple[str, Version, str | None, tuple[str, ...]]] = {}
    for build in runs:
        newest[build[0]] = build
    lines = ", ".join(f"{e} {v} (CUDA {cuda})" for e, v, cuda, _sass in newest.values())
    return f"the driver supports CUDA {major}.{minor}: {upgrade}, or use the newest release of its line: {lines}"


def _kernels_fix(matrix: Matrix, engine: str | None) -> str | None:
    """The newest probed release with SASS for each GPU of the table."""
    builds = _builds(matrix, engine)
    if not builds:
        return None
    per_gpu = []
    for gpu in sorted(matrix.gpus.values(), key=lambda g: g.compute_capability):
        cc = gpu.compute_capability
        fitting = [b for b in builds if any(Version(s).major == cc.major and Version(s) <= cc for s in b[3])]
        if fitting:
            best = max(fitting, key=lambda b: b[1])
            per_gpu.append(f"{gpu.name} ({cc}): {best[0]} {best[1]}")
    if not per_gpu:
        return None
    return "use a release with kernels for this GPU; the newest per GPU: " + "; ".join(per_gpu)


def _float16_fix(matrix: Matrix, model_type: str, engine: str) -> str | None:
    rules = matrix.engine_rules.get(engine)
    if rules is None:
        return None
    refusals = [r for r in rules.refused_dtypes if r.model_type == model_type and r.dtype == "float16"]
    if not refusals:
        return None
    spans = ", ".join(str(r.versions) for r in refusals)
    probed = sorted(Version(t) for e, _v, t in matrix.build_requirements if e == engine)
    allowing = [v for v in probed if rules.knows(v) and rules.refusal(v, (model_type,), "float16") is None]
    older = f", or {engine} {max(allowing)} (the newest release that allows float16)" if allowing else ""
    return (
        f"{engine} {spans} refuses float16 for {model_type}: pass --dtype bfloat16 on compute capability 8.0 or "
        f"newer, --dtype float32 on older GPUs (twice the weight memory){older}; envman plan chooses for the GPU"
    )


def _method_fix(matrix: Matrix, method: str, engine: str) -> str | None:
    rules = matrix.engine_rules.get(engine)
    if rules is None:
        return None
    plugins = [p for p in rules.quant_plugins if p.method == method]
    spans = [str(m.versions) for m in rules.quant_methods if m.method == method]
    in_tree = f"{engine} releases {spans[-1]} have {method!r} in-tree" if spans else ""
    if plugins:
        plugin = plugins[-1]
        return (
            f"{engine} {plugin.versions} registers {method!r} only through the plugin package {plugin.package}: "
            f"install it beside {engine} (or lock it in), or use an older release ({in_tree})"
        )
    if spans:
        return f"{in_tree}: use one of them, or a checkpoint in a method this release registers"
    return None
