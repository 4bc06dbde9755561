"""NVIDIA GPUs through NVML (the ``pynvml`` module of the nvidia-ml-py package).

``pynvml`` is imported inside :func:`query_nvml`, never at module import, so envman works
on machines without it. Nothing here raises: a missing library, a driver that is not
loaded or a call that fails becomes a note, and detection carries on with what it has.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from packaging.version import Version

from envman.hardware.host import Gpu

# nvmlReturn_t NVML_ERROR_LIBRARY_NOT_FOUND: nvmlInit could not load libnvidia-ml.so.1.
_LIBRARY_NOT_FOUND = 12


@dataclass(frozen=True)
class NvmlReport:
    """What NVML said about this machine's GPUs, and what it could not say."""

    gpus: tuple[Gpu, ...] = ()
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # highest CUDA the driver supports, "12.4"
    notes: tuple[str, ...] = ()


def query_nvml() -> NvmlReport:
    try:
        import pynvml
    except ImportError:
        return NvmlReport(notes=("NVML not available: the nvidia-ml-py package (pynvml) is not installed",))
    nvml: ModuleType = pynvml
    # Bindings raise NVMLError; ctypes can raise OSError; old bindings lack newer
    # functions (AttributeError).
    errors = (nvml.NVMLError, OSError, AttributeError)
    try:
        nvml.nvmlInit()
    except errors as error:
        return NvmlReport(notes=(f"NVML not available: {_init_failure(error)}",))
    try:
        return _query(nvml, errors)
    finally:
        with contextlib.suppress(*errors):
            nvml.nvmlShutdown()


def cuda_version_string(version: int) -> str:
    """NVML's CUDA driver version (12040) as "12.4"."""
    return f"{version // 1000}.{version % 1000 // 10}"


def _query(nvml: ModuleType, errors: tuple[type[BaseException], ...]) -> NvmlReport:
    notes: list[str] = []
    driver: str | None = None
    cuda: str | None = None
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
    except errors as error:
        notes.append(f"NVML could not read the driver version: {error}")
    try:
        cuda = cuda_version_string(int(nvml.nvmlSystemGetCudaDriverVersion()))
    except errors as error:
        notes.append(f"NVML could not read the CUDA version the driver supports: {error}")
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except errors as error:
        notes.append(f"NVML could not count the GPUs: {error}")
        count = 0
    gpus: list[Gpu] = []
    for index in range(count):
        try:
            gpus.append(_device(nvml, index, errors))
        except errors as error:
            notes.append(f"GPU {index} skipped: NVML could not read it: {error}")
    return NvmlReport(gpus=tuple(gpus), driver_version=driver, cuda_driver_version=cuda, notes=tuple(notes))


def _device(nvml: ModuleType, index: int, errors: tuple[type[BaseException], ...]) -> Gpu:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    try:
        uuid: str | None = _text(nvml.nvmlDeviceGetUUID(handle))
    except errors:
        uuid = None  # only an identifier for the report; the GPU is usable without it
    return Gpu(
        name=_text(nvml.nvmlDeviceGetName(handle)),
        compute_capability=Version(f"{major}.{minor}"),
        memory_total_bytes=int(memory.total),
        memory_free_bytes=int(memory.free),
        uuid=uuid,
    )


def _text(value: Any) -> str:
    # nvidia-ml-py < 11.515 returns bytes for string results; newer releases decode them.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _init_failure(error: BaseException) -> str:
    if getattr(error, "value", None) == _LIBRARY_NOT_FOUND:
        return "libnvidia-ml.so.1 not found (no NVIDIA driver on this machine)"
    return f"nvmlInit failed: {error}"
