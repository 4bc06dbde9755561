"""Which GPU code runs on which GPU: NVIDIA's binary and PTX compatibility rules.

From the CUDA C++ Programming Guide, "Binary Compatibility" and "PTX Compatibility"
(docs.nvidia.com/cuda/cuda-c-programming-guide, section 3.1.2/3.1.3):

- a cubin (SASS) built for compute capability X.y runs on devices of capability X.z, z >= y,
  and on no other major: sm_80 runs on 8.0, 8.6, 8.9; not on 7.5 nor on 9.0;
- PTX for X.y is compiled just in time by the driver for any device of capability >= X.y,
  if the driver is new enough for the toolkit that wrote the PTX.

Architecture-specific targets (``sm_90a``, ``sm_100a``: "9.0a" here, marked in the fat binary
entry's flags, see :mod:`envman.probe.hoststack.fatbin`) run only on exactly their own
capability: a library whose only Hopper code is sm_90a has no code for a 9.x GPU other than 9.0,
and its compute_90a PTX is not JIT-compiled for 10.0 either. Family-specific targets
(``sm_100f``: "10.0f") run on the family, the same major at or above the minor, as plain SASS does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from packaging.version import Version


def target(text: str) -> tuple[Version, bool]:
    """ "9.0a" -> (9.0, True): the capability and whether the target is architecture-specific
    ("10.0f", family-specific, runs as plain SASS of its major does)."""
    specific = text.endswith("a")
    return Version(text.removesuffix("a").removesuffix("f")), specific


def sass_runs(capability: Version, sass: Iterable[str]) -> str | None:
    """The SASS target of ``sass`` that runs natively on ``capability`` (the newest), if any."""
    fitting = []
    for text in sass:
        version, specific = target(text)
        if version == capability if specific else (_major(version) == _major(capability) and version <= capability):
            fitting.append((version, text))
    return _text(max(fitting)[0]) if fitting else None


def ptx_runs(capability: Version, ptx: Iterable[str]) -> str | None:
    """The PTX target that the driver can JIT for ``capability`` (the newest not above it), if any."""
    fitting = []
    for text in ptx:
        version, specific = target(text)
        if version == capability if specific else version <= capability:
            fitting.append(version)
    return _text(max(fitting)) if fitting else None


def usable_sass(components: Sequence[tuple[Sequence[str], Sequence[str]]]) -> tuple[str, ...]:
    """The capabilities every component runs natively, among those any component targets.

    ``components`` are ``(sass, ptx)`` pairs (an engine's library, torch's libtorch_cuda).
    An engine with Blackwell kernels beside a torch without them has no 10.0 here.
    """
    candidates = sorted({target(s)[0] for sass, _ptx in components for s in sass})
    return tuple(_text(c) for c in candidates if all(sass_runs(c, sass) is not None for sass, _ptx in components))


def usable_ptx(components: Sequence[tuple[Sequence[str], Sequence[str]]]) -> tuple[str, ...]:
    """The PTX targets the driver may JIT where no SASS runs, when every component has PTX:
    one without any (torch's libtorch_cuda usually) runs nowhere beyond its SASS."""
    if not components or not all(ptx for _sass, ptx in components):
        return ()
    return tuple(_text(v) for v in sorted({target(p)[0] for _sass, ptx in components for p in ptx}))


def _major(version: Version) -> int:
    return version.release[0]


def _text(version: Version) -> str:
    release = version.release
    return f"{release[0]}.{release[1] if len(release) > 1 else 0}"
