"""The host a plan targets: this machine (detected) or one named with ``--hardware``."""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.version import Version

from envman.matrix.schema import Accelerator

GIB = 1024**3


@dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: Version  # e.g. Version("8.0")
    memory_total_bytes: int
    memory_free_bytes: int | None = None
    vendor: str = "nvidia"
    uuid: str | None = None


@dataclass(frozen=True)
class Cpu:
    model: str
    cores: int
    memory_total_bytes: int
    flags: frozenset[str] = frozenset()  # normalised: avx2, avx512f, avx512_bf16, amx_bf16, neon …


@dataclass(frozen=True)
class Host:
    os: str  # linux | darwin | windows
    arch: str  # x86_64 | aarch64 | arm64
    cpu: Cpu
    gpus: tuple[Gpu, ...] = ()
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # highest CUDA the driver supports, "12.4"
    glibc: str | None = None
    source: str = "detected"  # "detected", or the --hardware text it was made from
    notes: tuple[str, ...] = field(default=())

    @property
    def accelerator(self) -> Accelerator:
        if self.gpus:
            return Accelerator.CUDA
        if self.os == "darwin" and self.arch in ("arm64", "aarch64"):
            return Accelerator.METAL
        return Accelerator.CPU

    @property
    def min_compute_capability(self) -> Version | None:
        if not self.gpus:
            return None
        return min(g.compute_capability for g in self.gpus)

    @property
    def gpu_memory_bytes(self) -> int:
        """Memory of the smallest GPU (tensor parallelism splits evenly)."""
        return min((g.memory_total_bytes for g in self.gpus), default=0)

    def describe(self) -> str:
        if self.gpus:
            names = sorted({g.name for g in self.gpus})
            return f"{len(self.gpus)}x {'/'.join(names)}"
        return f"CPU only ({self.cpu.cores} cores, {self.cpu.memory_total_bytes / GIB:.0f} GiB RAM)"
