"""What one engine release's CUDA build needs from the host, read from its wheels.

For a release: its Linux x86_64 wheel (the highest build tag), every shared library in it
(DT_NEEDED sonames, GLIBC_x.y, fat binaries), and the torch it pins (``torch==X`` in
Requires-Dist; for an engine that leaves torch open, the torch its committed lockfile pins),
read the same way but only ``libtorch_cuda.so``, whose kernels every model runs through.
Engines whose GPU code ships in a package of its own (SGLang's ``sglang-kernel``) have that
package's core libraries read too, at the version the engine pins. The CUDA runtime line
comes from the pins (torch's ``nvidia-cuda-runtime`` or ``cuda-toolkit``), else from the
``libcudart.so.N`` soname (the major only); a runtime of another major than the libraries
link is noted (a lock that mixes CUDA 12 and 13).

The GPU code that decides where a build runs is its *core* libraries' (vLLM's ``_C`` and
``_moe_C``; optional kernels such as FlashMLA target fewer GPUs on purpose).
"""

from __future__ import annotations

import datetime
import re
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from envman import pypi
from envman.errors import TargetError, UsageError
from envman.matrix.schema import Accelerator, BuildRequirements, Engine, KernelTargets
from envman.probe.hoststack.pins import Pin, cuda_runtime, exact_pins, lockfile_pins
from envman.probe.hoststack.wheel import Library, WheelFacts, wheel_facts
from envman.report import NullReporter, Reporter

# The libraries whose kernels decide where a package runs, per PyPI package.
CORE_LIBRARIES: dict[str, re.Pattern[str]] = {
    "vllm": re.compile(r"vllm/_(?:moe_)?C(?:_stable_libtorch)?\.abi3\.so"),
    "torch": re.compile(r"torch/lib/libtorch_cuda\.so"),
    "lmdeploy": re.compile(r"lmdeploy/turbomind/_turbomind\.[^/]*\.so"),
    # sgl_kernel/load_utils.py (sglang-kernel 0.4.10) l.60-68 loads sm90/common_ops on a 9.0 GPU,
    # sm100/common_ops on every other; older sgl-kernel wheels have one common_ops beside __init__.
    "sglang-kernel": re.compile(r"sgl_kernel/(?:sm(?:90|100)/)?common_ops\.[^/]*\.so"),
    "sgl-kernel": re.compile(r"sgl_kernel/(?:sm(?:90|100)/)?common_ops\.[^/]*\.so"),
}
# Packages holding an engine's GPU code, read at the version the engine pins (Requires-Dist ==).
KERNEL_PACKAGES: dict[str, tuple[str, ...]] = {"sglang": ("sglang-kernel", "sgl-kernel")}
_CUDA_SONAME = re.compile(r"lib(?:cudart|nvrtc|cublas|cublasLt|cuda)\.so\.\d+")
_TORCH_MEMBER = re.compile(r"torch/lib/libtorch_cuda\.so")


@dataclass(frozen=True)
class Kernels:
    library: str  # "vllm/_C.abi3.so" or "torch/lib/libtorch_cuda.so (torch 2.6.0)"
    sass: tuple[str, ...]
    ptx: tuple[str, ...]


@dataclass(frozen=True)
class BuildStack:
    engine: str
    variant: str
    package: str
    version: str
    wheel: str
    manylinux: str  # the wheel's platform tag
    sonames: tuple[str, ...]  # CUDA libraries linked (DT_NEEDED)
    cuda_runtime: str | None  # "12.4"
    cuda_runtime_from: str  # the pin or soname that says so
    glibc: str | None  # the highest GLIBC_x.y of the engine's and torch's libraries
    kernels: tuple[Kernels, ...]
    torch: str | None = None
    evidence: str = ""
    seconds: float = 0.0  # reading time, 0 when every wheel came from the cache
    notes: tuple[str, ...] = field(default=())

    def to_record(self) -> BuildRequirements:
        """The build as the matrix keeps it (``host_requirements.ENGINE.VARIANT.VERSION``)."""
        return BuildRequirements(
            engine=self.engine,
            variant=self.variant,
            version=Version(self.version),
            wheel=self.wheel,
            manylinux=self.manylinux,
            cuda_runtime=self.cuda_runtime,
            sonames=self.sonames,
            glibc=self.glibc,
            kernels=tuple(KernelTargets(k.library, k.sass, k.ptx) for k in self.kernels),
            torch=self.torch,
            evidence=self.evidence,
        )


def cuda_wheel(release: pypi.Release) -> pypi.ReleaseFile | None:
    """The release's Linux x86_64 wheel for CPython 3.11 (or abi3 / py3), highest build tag first."""
    candidates = []
    for file in release.files:
        if not file.filename.endswith(".whl") or "x86_64" not in file.filename or "linux" not in file.filename:
            continue
        _name, _version, build, tags = parse_wheel_filename(file.filename)
        interpreters = {tag.interpreter for tag in tags}
        abis = {tag.abi for tag in tags}
        if "cp311" in interpreters or "abi3" in abis or any(i.startswith("py3") for i in interpreters):
            candidates.append((build, file))
    return max(candidates, key=lambda pair: pair[0])[1] if candidates else None


def probe_build(
    package: str,
    release: pypi.Release,
    *,
    engine: str = "",
    variant: str = "cuda",
    torch_releases: Sequence[pypi.Release] | None = None,
    reporter: Reporter | None = None,
    today: datetime.date | None = None,
    lock: Path | None = None,
) -> BuildStack:
    """``lock``: the committed lockfile of this build; its torch is read where the engine pins none."""
    reporter = reporter or NullReporter()
    wheel = cuda_wheel(release)
    if wheel is None:
        raise TargetError(f"{package} {release.version} has no Linux x86_64 wheel on the index")
    core = CORE_LIBRARIES.get(package)
    facts = wheel_facts(
        wheel, kernels=_matcher(core) if core else None, key="core" if core else "all", reporter=reporter
    )
    pins = exact_pins(facts.requires, f"{wheel.filename} METADATA")
    notes: list[str] = []
    kernels = _core_kernels(package, facts)
    libraries = list(facts.libraries)
    seconds = facts.seconds
    companion_text = ""
    for name in KERNEL_PACKAGES.get(package, ()):
        pin = pins.get(name)
        if pin is None:
            continue
        companion = _pinned_facts(pin, reporter)
        if companion is None:
            notes.append(f"{name} {pin.version} has no Linux x86_64 wheel on the index")
            continue
        seconds += companion.seconds
        kernels += _core_kernels(name, companion, f" ({name} {pin.version})")
        libraries += companion.libraries
        read = ", ".join(k.library.split(" (")[0] for k in _core_kernels(name, companion)) or "no CUDA library"
        companion_text += f"; {companion.filename} {read} .nv_fatbin, DT_NEEDED, .gnu.version_r"
    lock_pins = lockfile_pins(lock) if lock is not None else {}
    torch_pin = pins.get("torch")
    from_lock = torch_pin is None and "torch" in lock_pins
    if from_lock:
        torch_pin = lock_pins["torch"]  # the engine leaves torch open: its lock decided
    runtime: tuple[str, Pin] | None = cuda_runtime(pins)
    engine_libraries = tuple(libraries)
    torch_text = ""
    if torch_pin is not None and package != "torch":
        torch_facts = _torch_facts(torch_pin, torch_releases, reporter)
        if torch_facts is None:
            notes.append(f"torch {torch_pin.version} has no Linux x86_64 cp311 wheel on the index")
        else:
            seconds += torch_facts.seconds
            kernels += _core_kernels("torch", torch_facts, f" (torch {torch_pin.version})")
            libraries += torch_facts.libraries
            runtime = runtime or cuda_runtime(exact_pins(torch_facts.requires, f"{torch_facts.filename} METADATA"))
            torch_text = f"; {torch_facts.filename} torch/lib/libtorch_cuda.so .nv_fatbin"
            if from_lock:
                torch_text += f" (torch=={torch_pin.version} at {torch_pin.where})"
    glibc = _highest_glibc(libraries)
    sonames = tuple(sorted({n for lib in engine_libraries for n in lib.needed if _CUDA_SONAME.fullmatch(n)}))
    line, source = _runtime_line(runtime, sonames)
    mismatch = _runtime_mismatch(line, sonames)
    if mismatch:
        notes.append(mismatch)
    platform = facts.platforms[0] if facts.platforms else ""
    stamp = (today or datetime.date.today()).isoformat()
    members = ", ".join(k.library for k in _core_kernels(package, facts)) or "no CUDA library"
    evidence = (
        f"{wheel.filename} (sha256 {wheel.sha256[:12]}…): {members} .nv_fatbin entry headers, "
        f"DT_NEEDED and .gnu.version_r of {len(facts.libraries)} shared objects, METADATA Requires-Dist"
        f"{companion_text}{torch_text}; CUDA runtime from {source} (envman probe --host-requirements, {stamp})"
    )
    return BuildStack(
        engine=engine or package,
        variant=variant,
        package=package,
        version=str(release.version),
        wheel=wheel.filename,
        manylinux=platform,
        sonames=sonames,
        cuda_runtime=line,
        cuda_runtime_from=source,
        glibc=glibc,
        kernels=kernels,
        torch=torch_pin.version if torch_pin else None,
        evidence=evidence,
        seconds=round(seconds, 1),
        notes=tuple(notes),
    )


def _matcher(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda name: pattern.fullmatch(name) is not None


def _core_kernels(package: str, facts: WheelFacts, suffix: str = "") -> tuple[Kernels, ...]:
    pattern = CORE_LIBRARIES.get(package)
    libraries = [lib for lib in facts.libraries if lib.fatbin_entries]  # vLLM CPU-only helpers have none
    if pattern is not None:
        libraries = [lib for lib in libraries if pattern.fullmatch(lib.member)]
    elif libraries:  # unknown package: the library with the most GPU code
        libraries = [max(libraries, key=lambda lib: lib.fatbin_entries)]
    return tuple(Kernels(f"{lib.member}{suffix}", lib.sass, lib.ptx) for lib in libraries)


def _runtime_mismatch(line: str | None, sonames: tuple[str, ...]) -> str:
    """A note when the runtime the pins select is of another CUDA major than the libraries link."""
    majors = sorted({n.rsplit(".", 1)[-1] for n in sonames if n.startswith("libcudart.so.")})
    if line is None or not majors or majors == [line.split(".")[0]]:
        return ""
    linked = ", ".join(f"libcudart.so.{m}" for m in majors)
    return f"the engine links {linked} but the pins select CUDA {line}: a lock of this build mixes CUDA majors"


def _pinned_facts(pin: Pin, reporter: Reporter) -> WheelFacts | None:
    """The facts of a kernel package at the pinned version (its core libraries read whole)."""
    version = Version(pin.version)
    release = next((r for r in pypi.releases(pin.name) if r.version == version), None)
    wheel = cuda_wheel(release) if release is not None else None
    if wheel is None:
        return None
    return wheel_facts(wheel, kernels=_matcher(CORE_LIBRARIES[pin.name]), key="core", reporter=reporter)


def _torch_facts(pin: Pin, releases: Sequence[pypi.Release] | None, reporter: Reporter) -> WheelFacts | None:
    if releases is None:
        releases = pypi.releases("torch")
    version = Version(pin.version)
    release = next((r for r in releases if r.version == version), None)
    if release is None:
        return None
    files = [f for f in release.files if "-cp311-cp311-" in f.filename and "manylinux" in f.filename]
    files = [f for f in files if "x86_64" in f.filename]
    if not files:
        return None
    return wheel_facts(
        files[0], lambda name: bool(_TORCH_MEMBER.fullmatch(name)), key="libtorch_cuda", reporter=reporter
    )


def _highest_glibc(libraries: Sequence[Library]) -> str | None:
    versions = [Version(lib.glibc) for lib in libraries if lib.glibc]
    return str(max(versions)) if versions else None


def _runtime_line(runtime: tuple[str, Pin] | None, sonames: tuple[str, ...]) -> tuple[str | None, str]:
    if runtime is not None:
        line, pin = runtime
        return line, f"{pin.name}=={pin.version} ({pin.where})"
    majors = sorted({n.rsplit(".", 1)[-1] for n in sonames if n.startswith("libcudart.so.")})
    if len(majors) == 1:
        return majors[0], f"DT_NEEDED libcudart.so.{majors[0]} (major only)"
    return None, "no CUDA runtime pinned or linked"


@dataclass(frozen=True)
class HostProbe:
    """Every release of one engine variant probed, oldest first."""

    engine: str
    variant: str
    package: str
    builds: tuple[BuildStack, ...]
    skipped: tuple[str, ...]  # "0.6.0: no Linux x86_64 wheel" …
    seconds: float


def probe_host_requirements(
    engine: str,
    package: str,
    variant: str,
    releases: Sequence[pypi.Release],
    *,
    reporter: Reporter | None = None,
    workers: int = 3,
    lockfiles: Path | None = None,
) -> HostProbe:
    """Probe each of ``releases`` (already filtered by the caller), ``workers`` at a time;
    ``lockfiles``: the committed lockfiles, whose torch counts where an engine pins none."""
    from concurrent.futures import ThreadPoolExecutor

    reporter = reporter or NullReporter()
    started = time.monotonic()
    torch_releases = pypi.releases("torch") if package != "torch" else None
    skipped: list[str] = []
    wanted = []
    for release in releases:
        if cuda_wheel(release) is None:
            skipped.append(f"{release.version}: no Linux x86_64 wheel on the index")
        else:
            wanted.append(release)

    def one(release: pypi.Release) -> BuildStack | str:
        try:
            build = probe_build(
                package,
                release,
                engine=engine,
                variant=variant,
                torch_releases=torch_releases,
                reporter=reporter,
                lock=committed_lock(lockfiles, engine, variant, str(release.version)),
            )
        except TargetError as error:
            return f"{release.version}: {error.message}"
        reporter.detail(f"{package} {build.version}: CUDA {build.cuda_runtime}, glibc {build.glibc}, {build.seconds} s")
        return build

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(one, wanted))
    builds = tuple(r for r in results if isinstance(r, BuildStack))
    skipped += [r for r in results if isinstance(r, str)]
    return HostProbe(engine, variant, package, builds, tuple(skipped), round(time.monotonic() - started, 1))


def committed_lock(lockfiles: Path | None, engine: str, variant: str, version: str) -> Path | None:
    """The committed lockfile of a build (``vllm-0.19.1-cuda-py3.11[-platform].txt``), if any."""
    if lockfiles is None:
        return None
    found = sorted(lockfiles.glob(f"{engine}-{version}-{variant}-py*.txt"))
    return found[0] if found else None


def probe_variant(
    engine: Engine,
    variant: str,
    versions: SpecifierSet | None,
    *,
    reporter: Reporter | None = None,
    lockfiles: Path | None = None,
) -> HostProbe:
    """Probe the releases of ``engine``'s ``variant`` in ``versions`` that the variant exists for."""
    if variant not in engine.variants:
        known = ", ".join(sorted(engine.variants))
        raise UsageError(f"{engine.name} has no variant {variant!r}", hint=f"Its variants: {known}.")
    chosen = engine.variants[variant]
    if chosen.accelerator is not Accelerator.CUDA:
        raise UsageError(
            f"{engine.name}/{variant} is a {chosen.accelerator.value} build: it has no CUDA stack to read",
            hint="Use --variant cuda.",
        )
    own_index = chosen.index_url and urllib.parse.urlparse(chosen.index_url).hostname != "pypi.org"
    if own_index and pypi.base_url() == pypi.DEFAULT_URL:
        raise TargetError(
            f"{engine.name}/{variant} wheels come from {chosen.index_url}, not from PyPI: "
            "the probe reads PyPI's JSON API (or ENVMAN_PYPI_URL) only",
            hint="Point ENVMAN_PYPI_URL at a mirror of that index that serves the JSON API and range requests.",
        )
    package = Requirement(chosen.package).name  # "sglang[all]": the releases are sglang's
    reporter = reporter or NullReporter()
    with reporter.status(f"reading the release list of {package}"):
        releases = pypi.releases(package)
    in_range = [
        r
        for r in releases
        if (versions is None or versions.contains(r.version, prereleases=True))
        and chosen.versions.contains(r.version, prereleases=True)
    ]
    if not in_range:
        spec = f" in {versions}" if versions is not None else ""
        raise UsageError(f"{package} has no release{spec} on the index")
    return probe_host_requirements(engine.name, package, variant, in_range, reporter=reporter, lockfiles=lockfiles)
