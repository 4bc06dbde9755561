"""What a build needs from the host, and whether a host has it: a pure check, no I/O.

The facts come from the matrix (``host_requirements``, written by ``envman probe
--host-requirements`` from the released wheels) and NVIDIA's driver rules
(``cuda_drivers``). :func:`check` gives one reason per unmet need, each naming the fact and
the way out; an empty list means the host can run the build. A need the host does not state
(no driver version for a named target) is not a reason: the plan shows what it needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from envman.hardware.cuda import ptx_runs, sass_runs, usable_ptx, usable_sass
from envman.hardware.host import Host
from envman.matrix.schema import BuildRequirements, KernelTargets, Matrix, Variant

# The glibc a manylinux tag promises: PEP 600 (manylinux_2_28) and the legacy aliases
# of PEP 513 / 571 / 599.
_LEGACY_MANYLINUX = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}
_PEP600 = re.compile(r"manylinux_(?P<major>\d+)_(?P<minor>\d+)_")


@dataclass(frozen=True)
class HostRequirements:
    """One engine release × variant's needs. Fields are None where nothing is needed or known."""

    cuda_runtime: str | None  # "12.4"
    min_driver: str | None  # "525.60.13": NVIDIA's floor for the runtime's major
    sass: tuple[str, ...]  # compute capabilities every kernel library runs natively ("8.0" …)
    ptx: tuple[str, ...]  # PTX targets the driver may JIT for newer GPUs
    glibc: str | None  # the highest of the libraries' GLIBC_x.y and the wheel tag's
    manylinux: str | None  # the wheel's platform tag
    evidence: str
    kernels: tuple[KernelTargets, ...] = ()  # per library: the check needs each to run
    driver_evidence: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "cuda_runtime": self.cuda_runtime,
            "min_driver": self.min_driver,
            "compute_capabilities": list(self.sass),
            "ptx": list(self.ptx),
            "glibc": self.glibc,
            "manylinux": self.manylinux,
            "evidence": self.evidence,
        }


NONE = HostRequirements(None, None, (), (), None, None, "")  # a CPU build: nothing asked of a GPU stack


def requirements_for(matrix: Matrix, engine: str, version: str, variant: str) -> HostRequirements | None:
    """The needs the matrix records for the build, or None where it was never probed."""
    record = matrix.build_requirements.get((engine, variant, str(Version(version))))
    return None if record is None else requirements_from(matrix, record)


def declared_requirements(matrix: Matrix, variant: Variant) -> HostRequirements | None:
    """What an unprobed build needs by its declared CUDA version (``cuda`` of the variant: a vendor
    build whose wheels cannot be read from PyPI), NVIDIA's driver floor for that major; no kernels."""
    if variant.cuda is None or not re.fullmatch(r"\d{1,2}\.\d{1,2}", variant.cuda):
        return None
    rule = matrix.cuda_drivers.get(int(variant.cuda.split(".")[0]))
    return HostRequirements(
        cuda_runtime=variant.cuda,
        min_driver=rule.min_driver if rule else None,
        sass=(),
        ptx=(),
        glibc=None,
        manylinux=None,
        evidence=variant.evidence,
        driver_evidence=rule.evidence if rule else "",
    )


def requirements_from(matrix: Matrix, record: BuildRequirements) -> HostRequirements:
    """A probed build's needs, with NVIDIA's driver floor for its CUDA major from the matrix."""
    rule = None
    if record.cuda_runtime is not None:
        rule = matrix.cuda_drivers.get(int(record.cuda_runtime.split(".")[0]))
    components = [(k.sass, k.ptx) for k in record.kernels]
    return HostRequirements(
        cuda_runtime=record.cuda_runtime,
        min_driver=rule.min_driver if rule else None,
        sass=usable_sass(components) if components else (),
        ptx=usable_ptx(components) if components else (),
        glibc=_highest(record.glibc, manylinux_glibc(record.manylinux)),
        manylinux=record.manylinux or None,
        evidence=record.evidence,
        kernels=record.kernels,
        driver_evidence=rule.evidence if rule else "",
    )


def check(req: HostRequirements, host: Host) -> list[str]:
    """Why ``host`` cannot run the build: one sentence per unmet need, with the way out."""
    reasons: list[str] = []
    if host.gpus:
        reasons += _driver(req, host)
        reasons += _architectures(req, host)
    if req.glibc is not None and host.glibc is not None and _version(host.glibc) < _version(req.glibc):
        tag = f" ({req.manylinux})" if req.manylinux else ""
        reasons.append(
            f"glibc {host.glibc} is older than the glibc {req.glibc} the build's wheels need{tag}: "
            f"use a host or base image with glibc >= {req.glibc}, or an older release"
        )
    return reasons


def manylinux_glibc(tag: str | None) -> str | None:
    """The glibc a wheel platform tag requires: manylinux_2_28_x86_64 -> "2.28"."""
    if not tag:
        return None
    match = _PEP600.match(tag)
    if match:
        return f"{match['major']}.{match['minor']}"
    return _LEGACY_MANYLINUX.get(tag.split("_", 1)[0])


def _driver(req: HostRequirements, host: Host) -> list[str]:
    if req.min_driver is None or host.driver_version is None:
        return []
    if _version(host.driver_version) >= _version(req.min_driver):
        return []
    return [
        f"the NVIDIA driver {host.driver_version} is too old for the CUDA {req.cuda_runtime} runtime "
        f"(CUDA {req.cuda_runtime.split('.')[0] if req.cuda_runtime else ''}.x needs >= {req.min_driver}): "
        f"upgrade the driver to >= {req.min_driver}"
    ]


def _architectures(req: HostRequirements, host: Host) -> list[str]:
    reasons = []
    for gpu in {g.compute_capability: g for g in host.gpus}.values():
        capability = gpu.compute_capability
        missing = [k for k in req.kernels if sass_runs(capability, k.sass) is None]
        if not missing:
            continue
        without_ptx = [k for k in missing if ptx_runs(capability, k.ptx) is None]
        if without_ptx:
            library = without_ptx[0]
            reasons.append(
                f"{gpu.name} (compute capability {capability}) has no kernels in this build: "
                f"{library.library} has SASS for {_listed(library.sass)} and PTX for {_listed(library.ptx)}; "
                f"the build runs on compute capability {_listed(req.sass)}"
            )
        elif not _can_jit(req, host):
            reasons.append(
                f"{gpu.name} (compute capability {capability}) runs this build only from PTX "
                f"({', '.join(k.library for k in missing)}), which needs a driver for CUDA >= {req.cuda_runtime}; "
                f"the driver supports CUDA {host.cuda_driver_version}: upgrade the driver"
            )
    return reasons


def _can_jit(req: HostRequirements, host: Host) -> bool:
    """PTX from toolkit X.Y is JIT-compiled only by a driver for CUDA >= X.Y; unknown: assumed so."""
    if host.cuda_driver_version is None or req.cuda_runtime is None:
        return True
    return _version(host.cuda_driver_version) >= _version(req.cuda_runtime)


def _highest(*versions: str | None) -> str | None:
    known = [v for v in versions if v]
    return max(known, key=_version) if known else None


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "none"


def newest_runnable(
    matrix: Matrix, engine: str, variant: str, host: Host, below: Version | None = None
) -> tuple[Version, HostRequirements] | None:
    """The newest probed release of the build (before ``below``, if given) that ``host`` can run:
    the way out a refusal names ("vllm 0.19.1 is the newest release that runs here")."""
    probed = sorted(
        (record.version for (e, v, _), record in matrix.build_requirements.items() if e == engine and v == variant),
        reverse=True,
    )
    for version in probed:
        if below is not None and version >= below:
            continue
        req = requirements_for(matrix, engine, str(version), variant)
        if req is not None and not check(req, host):
            return version, req
    return None


_DRIVER_TEXT = re.compile(r"\d{2,4}(\.\d{1,3}){0,2}")


def driver_refusal(matrix: Matrix, engine: str, version: str, variant: str, driver: str) -> str | None:
    """Why a build's CUDA runtime needs a newer NVIDIA driver than ``driver`` (``lock --driver``,
    ``dockerfile --driver``), or None where it runs or its need was never probed."""
    req = requirements_for(matrix, engine, version, variant)
    if req is None or req.min_driver is None or _version(driver) >= _version(req.min_driver):
        return None
    return (
        f"{engine} {version} ({variant}): its CUDA {req.cuda_runtime} runtime needs an NVIDIA driver "
        f">= {req.min_driver}, {driver} is older"
    )


def valid_driver(driver: str) -> bool:
    return bool(_DRIVER_TEXT.fullmatch(driver))
