"""Fakes for hardware tests: an NVML module and the GPU table.

The fake NVML mirrors nvidia-ml-py (``pynvml``, 13.x): ``nvmlInit`` raises ``NVMLError``
subclasses chosen by return code, string results are ``str`` (``bytes`` before 11.515),
``nvmlDeviceGetMemoryInfo`` returns an object with ``.total/.free/.used``,
``nvmlDeviceGetCudaComputeCapability`` a ``(major, minor)`` tuple and
``nvmlSystemGetCudaDriverVersion`` an int such as 12040. Calls before ``nvmlInit`` raise
Uninitialized, as the real library does.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from envman.hardware.host import GIB
from envman.matrix.schema import GpuSpec

# nvmlReturn_t codes, as in pynvml.py.
UNINITIALIZED = 1
NOT_SUPPORTED = 3
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15
_MESSAGES = {
    UNINITIALIZED: "Uninitialized",
    NOT_SUPPORTED: "Not Supported",
    DRIVER_NOT_LOADED: "Driver Not Loaded",
    LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    FUNCTION_NOT_FOUND: "Function Not Found",
    GPU_IS_LOST: "GPU is lost",
}


class _Memory:
    """Like pynvml.c_nvmlMemory_t: bytes in .total, .free, .used."""

    def __init__(self, total: int, free: int) -> None:
        self.total = total
        self.free = free
        self.used = total - free


class _Handle:
    """Like pynvml.c_nvmlDevice_t: opaque to callers."""

    def __init__(self, index: int) -> None:
        self.index = index


def make_fake_nvml(
    gpus: Sequence[Mapping[str, Any]] = (),
    *,
    driver: str = "550.54.15",
    cuda: int = 12040,
    init_error: int | None = None,
    fail: Mapping[str, int] | None = None,
    fail_on_index: int | None = None,
    bytes_strings: bool = False,
) -> types.ModuleType:
    """A module standing in for ``pynvml``.

    ``gpus``: dicts with name, cc (major, minor), total_gib, free_gib, uuid.
    ``fail``: function name -> NVML return code it raises (for every device, or only for
    ``fail_on_index`` when given).
    """
    nvml = types.ModuleType("pynvml")
    state = {"initialised": False, "shutdowns": 0}
    failures = dict(fail or {})

    class NVMLError(Exception):
        def __init__(self, value: int) -> None:
            super().__init__(value)
            self.value = value

        def __str__(self) -> str:
            return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")

    def error_class(value: int) -> type[NVMLError]:
        return {
            DRIVER_NOT_LOADED: NVMLError_DriverNotLoaded,
            LIBRARY_NOT_FOUND: NVMLError_LibraryNotFound,
        }.get(value, NVMLError)

    class NVMLError_DriverNotLoaded(NVMLError):
        pass

    class NVMLError_LibraryNotFound(NVMLError):
        pass

    def check(function: str, index: int | None = None) -> None:
        if not state["initialised"]:
            raise NVMLError(UNINITIALIZED)
        if function in failures and (fail_on_index is None or index == fail_on_index):
            code = failures[function]
            raise error_class(code)(code)

    def text(value: str) -> str | bytes:
        return value.encode() if bytes_strings else value

    def nvmlInit() -> None:
        if init_error is not None:
            raise error_class(init_error)(init_error)
        state["initialised"] = True

    def nvmlShutdown() -> None:
        check("nvmlShutdown")
        state["initialised"] = False
        state["shutdowns"] += 1

    def nvmlSystemGetDriverVersion() -> str | bytes:
        check("nvmlSystemGetDriverVersion")
        return text(driver)

    def nvmlSystemGetCudaDriverVersion() -> int:
        check("nvmlSystemGetCudaDriverVersion")
        return cuda

    def nvmlDeviceGetCount() -> int:
        check("nvmlDeviceGetCount")
        return len(gpus)

    def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
        check("nvmlDeviceGetHandleByIndex", index)
        if not 0 <= index < len(gpus):
            raise NVMLError(2)  # Invalid Argument
        return _Handle(index)

    def nvmlDeviceGetName(handle: _Handle) -> str | bytes:
        check("nvmlDeviceGetName", handle.index)
        return text(str(gpus[handle.index]["name"]))

    def nvmlDeviceGetUUID(handle: _Handle) -> str | bytes:
        check("nvmlDeviceGetUUID", handle.index)
        return text(str(gpus[handle.index].get("uuid", f"GPU-0000000{handle.index}-fake")))

    def nvmlDeviceGetMemoryInfo(handle: _Handle, version: int | None = None) -> _Memory:
        check("nvmlDeviceGetMemoryInfo", handle.index)
        gpu = gpus[handle.index]
        total = round(float(gpu["total_gib"]) * GIB)
        return _Memory(total, round(float(gpu.get("free_gib", gpu["total_gib"])) * GIB))

    def nvmlDeviceGetCudaComputeCapability(handle: _Handle) -> tuple[int, int]:
        check("nvmlDeviceGetCudaComputeCapability", handle.index)
        major, minor = gpus[handle.index]["cc"]
        return int(major), int(minor)

    for name, value in list(locals().items()):
        if name.startswith(("nvml", "NVMLError")):
            setattr(nvml, name, value)
    nvml.NVML_ERROR_LIBRARY_NOT_FOUND = LIBRARY_NOT_FOUND  # type: ignore[attr-defined]
    nvml.fake_state = state  # type: ignore[attr-defined]
    return nvml


InstallNvml = Callable[..., types.ModuleType]


@pytest.fixture
def install_nvml(monkeypatch: pytest.MonkeyPatch) -> InstallNvml:
    """Put a fake ``pynvml`` in sys.modules; takes make_fake_nvml's arguments."""

    def install(*args: Any, **kwargs: Any) -> types.ModuleType:
        module = make_fake_nvml(*args, **kwargs)
        monkeypatch.setitem(sys.modules, "pynvml", module)
        return module

    return install


# TEST HELPER, to be replaced by the matrix loader (envman.matrix.load) once matrix.toml
# holds the GPU table: reads the hardware fragment's [gpus] into GpuSpec objects.
@pytest.fixture(scope="session")
def gpu_table() -> Mapping[str, GpuSpec]:
    from envman.matrix.load import load_matrix

    return load_matrix().gpus
