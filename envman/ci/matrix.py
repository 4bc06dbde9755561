"""CI: the matrix of image builds and smokes (the rows its workflow, envman.ci.workflow, runs).

One row per known-good engine × version × variant. CPU rows build the image on a hosted
runner and smoke it with the family's synthesized smoke model. GPU rows run on self-hosted
runners chosen by labels, with real weights: the family's smallest catalog model the engine
serves; the row says the compute capability and memory that runner must have (both from the
matrix: the variant's floor for that release, and the planner's memory estimate).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envman.docker import dockerfile
from envman.errors import ConfigError, TargetError, UsageError
from envman.hardware.host import GIB
from envman.matrix.combinations import Combination, known_good
from envman.matrix.schema import Accelerator, Matrix, Model
from envman.report import Reporter
from envman.run.smoke import SmokeResult

CPU_RUNNER = ("ubuntu-24.04",)
GPU_RUNNER = ("self-hosted", "linux", "x64", "gpu")
SMOKE_CONTEXT = 4096  # tokens planned for a GPU smoke: enough for one chat turn
# Every string of a row: it reaches workflow files, job names and `fromJSON` consumers of
# `envman ci matrix`. No quote, space, `$`, backquote, brace or control character; no leading `-`.
SAFE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:+-]*\Z")


@dataclass(frozen=True)
class Row:
    family: str
    engine: str
    version: str
    variant: str
    runner: str  # "cpu" or "gpu"
    runs_on: tuple[str, ...]
    model: str  # the model the smoke serves
    image: str
    dockerfile: str
    min_compute_capability: str | None = None
    min_memory_gib: int | None = None
    min_driver: str | None = None  # NVIDIA's floor for the build's CUDA runtime (host_requirements)

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "engine": self.engine,
            "version": self.version,
            "variant": self.variant,
            "runner": self.runner,
            "runs_on": list(self.runs_on),
            "model": self.model,
            "image": self.image,
            "dockerfile": self.dockerfile,
            "min_compute_capability": self.min_compute_capability,
            "min_memory_gib": self.min_memory_gib,
            "min_driver": self.min_driver,
        }


def _gpu_model(matrix: Matrix, combination: Combination, family: str) -> tuple[Model, int]:
    """The family's smallest catalog model (real weights) the engine serves, and the GPU memory it needs."""
    from envman.errors import TargetError as NoPlan
    from envman.hardware.spec import parse_hardware
    from envman.plan.planner import Planner
    from envman.plan.request import PlanRequest

    variant = matrix.engines[combination.engine].variants[combination.variant]
    floor = dockerfile.min_compute_capability(variant, combination)
    gpus = [g for g in matrix.gpus.values() if floor is None or g.compute_capability >= floor]
    if not gpus:
        raise ConfigError(f"no GPU in matrix.toml's table meets compute capability {floor} ({combination})")
    largest = max(gpus, key=lambda g: g.memory_gib)
    planner = Planner(matrix, parse_hardware(largest.name, matrix.gpus))
    candidates = sorted(
        (m for m in matrix.models.values() if m.family == family and not m.smoke), key=lambda m: (m.params_b, m.name)
    )
    for model in candidates:
        request = PlanRequest(
            model=model.name,
            engine=combination.engine,
            version=str(combination.version),
            max_model_len=min(SMOKE_CONTEXT, model.max_context),
            tensor_parallel_size=1,
        )
        try:
            plan = planner.plan(request)
        except (NoPlan, UsageError):
            continue
        if plan.variant.name == combination.variant and not plan.forced:
            return model, math.ceil(plan.memory.per_device_bytes / plan.memory.utilization / GIB)
    raise ConfigError(f"no catalog model of the {family} family fits one {largest.name} with {combination}")


def checked(row: Row) -> Row:
    """``row`` if every value in it is in :data:`SAFE_VALUE`'s character set."""
    for key, value in row.to_json().items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not SAFE_VALUE.match(text):
                raise ConfigError(
                    f"CI row {row.engine} {row.version} ({row.variant}): {key} {text!r} has characters a generated "
                    "workflow does not take",
                    hint="names in matrix.toml that reach CI use letters, digits and . _ / : + - "
                    "(starting with a letter or digit)",
                )
    return row


def rows(matrix: Matrix, selected: Sequence[Combination] | None = None) -> list[Row]:
    """One checked row per combination (default: every known-good one)."""
    found: list[Row] = []
    for combination in selected if selected is not None else known_good(matrix):
        variant = matrix.engines[combination.engine].variants[combination.variant]
        smoke = dockerfile.smoke_model(matrix, combination)
        image, path = dockerfile.image_tag(combination), f"dockerfiles/{dockerfile.filename(combination)}"
        engine, version, name = combination.engine, str(combination.version), combination.variant
        if variant.accelerator is Accelerator.CPU:
            found.append(Row(smoke.family, engine, version, name, "cpu", CPU_RUNNER, smoke.name, image, path))
        elif variant.accelerator is Accelerator.CUDA:
            model, memory = _gpu_model(matrix, combination, smoke.family)
            floor = dockerfile.min_compute_capability(variant, combination)
            cc = str(floor) if floor is not None else None
            from envman.plan.requirements import requirements_for

            needs = requirements_for(matrix, engine, version, name)
            driver = needs.min_driver if needs is not None else None
            row = Row(
                smoke.family, engine, version, name, "gpu", GPU_RUNNER, model.name, image, path, cc, memory, driver
            )
            found.append(row)
    return [checked(row) for row in found]


def parse_shard(text: str) -> tuple[int, int]:
    # ASCII digits only: str.isdigit() takes "²", which int() then refuses
    match = re.fullmatch(r"([0-9]+)/([0-9]+)", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"--shard {text!r} is not I/N with 1 <= I <= N", hint="e.g. --shard 1/4")
    return int(match[1]), int(match[2])


def shard(items: Sequence[Row], index: int, count: int) -> list[Row]:
    """Shard ``index`` of ``count`` (1-based): every count-th row, so each shard mixes runners."""
    return [row for i, row in enumerate(items) if i % count == index - 1]


def github_matrix(selected: Sequence[Row]) -> str:
    """One line for ``$GITHUB_OUTPUT``: ``{"include": [...]}`` (strategy.matrix takes it with fromJSON)."""
    return json.dumps({"include": [r.to_json() for r in selected]}, separators=(",", ":"))


def runner_check(min_compute_capability: str, min_memory_gib: float, min_driver: str = "") -> str:
    """Fail unless this machine has a GPU meeting the floors, and a driver for the build's CUDA
    runtime (``min_driver``; empty: the build's need was not probed)."""
    from packaging.version import Version

    from envman.hardware.detect import detect_host

    if not re.fullmatch(r"[0-9]+\.[0-9]+", min_compute_capability):
        raise UsageError(f"--min-compute-capability {min_compute_capability!r} is not MAJOR.MINOR", hint="e.g. 7.5")
    if min_driver and not re.fullmatch(r"[0-9]{3}(\.[0-9]{1,3}){0,2}", min_driver):
        raise UsageError(f"--min-driver {min_driver!r} is not a driver version", hint="e.g. 525.60.13")
    if not math.isfinite(min_memory_gib) or min_memory_gib < 0:
        raise UsageError(f"--min-memory-gib {min_memory_gib} is not a size in GiB", hint="e.g. 24")
    host = detect_host()
    if not host.gpus:
        raise TargetError("this runner has no NVIDIA GPU (NVML found none)", hint="check the runner's labels")
    cc, memory = host.min_compute_capability, host.gpu_memory_bytes / GIB
    if cc is None or cc < Version(min_compute_capability) or memory < min_memory_gib:
        raise TargetError(
            f"this runner's GPU ({host.describe()}, compute capability {cc}, {memory:.1f} GiB) is below the job's "
            f"floor: compute capability {min_compute_capability}, {min_memory_gib} GiB",
            hint="label GPU runners by what they have, or change the job's runs-on labels",
        )
    driver = host.driver_version
    if min_driver and (driver is None or Version(driver) < Version(min_driver)):
        raise TargetError(
            f"this runner's NVIDIA driver ({driver or 'unknown'}) is older than the job's build needs: "
            f"driver >= {min_driver} for its CUDA runtime",
            hint=f"upgrade the runner's driver to >= {min_driver}, or label it so this job does not pick it",
        )
    return f"{host.describe()}: compute capability {cc}, {memory:.1f} GiB, driver {driver or 'unknown'}"


def smoke_combination(
    matrix: Matrix,
    combination: Combination,
    *,
    model: str | None = None,
    base_image: str | None = None,
    extra_ca: Path | None = None,
    timeout: float = 600.0,
    reporter: Reporter | None = None,
) -> SmokeResult:
    """Build a combination's image from its Dockerfile and smoke it in a container with ``model``
    (default: the image's own smoke model, synthesized here and mounted read-only).

    The same loop, result and evidence record as a local ``envman smoke``.
    """
    import os

    from envman.docker import image
    from envman.docker.serve import INNER_PORT, ContainerRunner
    from envman.engines.launch import Bindings, launch
    from envman.lock import lockfile, locks
    from envman.matrix.catalog import resolve_model
    from envman.matrix.schema import Format
    from envman.plan.planner import Planner
    from envman.plan.request import PlanRequest
    from envman.run.smoke import smoke
    from envman.synth import synthesize

    public = dockerfile.public_matrix(matrix.path)
    built = image.build_image(
        public, combination.engine, combination.version, combination.variant,
        base_image=base_image, extra_ca=extra_ca, reporter=reporter,
    )  # fmt: skip
    variant = public.engines[combination.engine].variants[combination.variant]
    cuda = variant.accelerator is Accelerator.CUDA
    chosen = resolve_model(public, model)[0] if model else dockerfile.smoke_model(public, combination)
    if cuda:
        from envman.hardware.detect import detect_host

        host = detect_host()
    else:
        host = dockerfile.plan_host(public, combination)
    plan = Planner(public, host).plan(
        PlanRequest(
            model=chosen,
            engine=combination.engine,
            version=str(combination.version),
            max_model_len=min(SMOKE_CONTEXT, chosen.max_context),
        )
    )
    mounts: dict[str, str] = {}
    weights = None
    if chosen.smoke:
        weights = dockerfile.weights_path(chosen, plan.artifact.format)
        fmt = Format.GGUF if plan.artifact.format is Format.GGUF else Format.PYTORCH
        mounts[str(synthesize(chosen, fmt))] = weights
    inner = launch(
        plan,
        Bindings(weights=weights, host="0.0.0.0", port=INNER_PORT),  # noqa: S104 - published on 127.0.0.1 only
    )
    request = locks.request_for(public, combination, offline=True)
    lock = lockfile.read(locks.lockfiles_dir(public) / request.filename)
    runner = ContainerRunner(
        inner,
        built,
        mounts,
        cuda,
        weights or inner.argv[-1],
        {"digest": lock.digest, "lockfile": f"lockfiles/{request.filename}"},
        {k: os.environ[k] for k in ("HF_TOKEN",) if os.environ.get(k)},
    )
    return smoke(public, plan, runner, timeout, reporter, build_seconds=built.seconds)
