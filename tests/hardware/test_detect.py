"""Detecting this machine: GPUs through a fake NVML, the CPU and OS for real."""

from __future__ import annotations

import os
import platform
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version

from envman.hardware.cpu import parse_cpuinfo, parse_meminfo
from envman.hardware.detect import detect_host, glibc_version, normalise_arch
from envman.hardware.gpu import cuda_version_string, query_nvml
from envman.hardware.host import GIB
from envman.matrix.schema import Accelerator

InstallNvml = Callable[..., types.ModuleType]

A100_40GB = {"name": "NVIDIA A100-SXM4-40GB", "cc": (8, 0), "total_gib": 40, "free_gib": 39.5}
V100_32GB = {"name": "Tesla V100-SXM2-32GB", "cc": (7, 0), "total_gib": 32, "free_gib": 31.0}
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15


def test_two_a100s(install_nvml: InstallNvml) -> None:
    nvml = install_nvml(
        [dict(A100_40GB, uuid="GPU-aaaa"), dict(A100_40GB, uuid="GPU-bbbb", free_gib=12)],
        driver="550.54.15",
        cuda=12040,
    )

    host = detect_host()

    assert [g.name for g in host.gpus] == ["NVIDIA A100-SXM4-40GB"] * 2
    assert [g.compute_capability for g in host.gpus] == [Version("8.0")] * 2
    assert [g.memory_total_bytes for g in host.gpus] == [40 * GIB] * 2
    assert [g.memory_free_bytes for g in host.gpus] == [round(39.5 * GIB), 12 * GIB]
    assert [g.uuid for g in host.gpus] == ["GPU-aaaa", "GPU-bbbb"]
    assert host.driver_version == "550.54.15"
    assert host.cuda_driver_version == "12.4"
    assert host.notes == ()
    assert host.accelerator is Accelerator.CUDA
    assert host.describe() == "2x NVIDIA A100-SXM4-40GB"
    assert nvml.fake_state == {"initialised": False, "shutdowns": 1}


def test_v100_host(install_nvml: InstallNvml) -> None:
    install_nvml([V100_32GB], driver="535.104.05", cuda=12020)

    host = detect_host()

    assert host.min_compute_capability == Version("7.0")
    assert host.gpu_memory_bytes == 32 * GIB
    assert host.cuda_driver_version == "12.2"
    assert host.driver_version == "535.104.05"


def test_old_bindings_return_bytes(install_nvml: InstallNvml) -> None:
    install_nvml([V100_32GB], driver="470.57.02", bytes_strings=True)

    host = detect_host()

    assert host.gpus[0].name == "Tesla V100-SXM2-32GB"
    assert host.gpus[0].uuid == "GPU-00000000-fake"
    assert host.driver_version == "470.57.02"


def test_nvml_package_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError

    host = detect_host()

    assert host.gpus == ()
    assert host.accelerator is Accelerator.CPU
    assert host.notes == ("NVML not available: the nvidia-ml-py package (pynvml) is not installed",)


def test_driver_not_loaded(install_nvml: InstallNvml) -> None:
    install_nvml([A100_40GB], init_error=DRIVER_NOT_LOADED)

    host = detect_host()

    assert host.gpus == ()
    assert host.driver_version is None
    assert host.notes == ("NVML not available: nvmlInit failed: Driver Not Loaded",)


def test_library_not_found(install_nvml: InstallNvml) -> None:
    install_nvml([], init_error=LIBRARY_NOT_FOUND)

    assert detect_host().notes == (
        "NVML not available: libnvidia-ml.so.1 not found (no NVIDIA driver on this machine)",
    )


def test_real_nvml_bindings_without_driver() -> None:
    # nvidia-ml-py is installed here but no NVIDIA driver is: the real binding's error path.
    pytest.importorskip("pynvml")
    report = query_nvml()
    if report.gpus:
        pytest.skip("this machine has an NVIDIA GPU")
    assert report.notes == ("NVML not available: libnvidia-ml.so.1 not found (no NVIDIA driver on this machine)",)


def test_a_gpu_that_fails_is_skipped_and_the_rest_kept(install_nvml: InstallNvml) -> None:
    nvml = install_nvml(
        [A100_40GB, A100_40GB, A100_40GB], fail={"nvmlDeviceGetMemoryInfo": GPU_IS_LOST}, fail_on_index=1
    )

    host = detect_host()

    assert len(host.gpus) == 2
    assert host.notes == ("GPU 1 skipped: NVML could not read it: GPU is lost",)
    assert nvml.fake_state["shutdowns"] == 1


def test_every_step_failing_is_a_note_not_an_exception(install_nvml: InstallNvml) -> None:
    install_nvml(
        [A100_40GB],
        fail={
            "nvmlSystemGetDriverVersion": GPU_IS_LOST,
            "nvmlSystemGetCudaDriverVersion": FUNCTION_NOT_FOUND,
            "nvmlDeviceGetCount": GPU_IS_LOST,
            "nvmlShutdown": GPU_IS_LOST,
        },
    )

    host = detect_host()

    assert host.gpus == ()
    assert host.driver_version is None
    assert host.cuda_driver_version is None
    assert host.notes == (
        "NVML could not read the driver version: GPU is lost",
        "NVML could not read the CUDA version the driver supports: Function Not Found",
        "NVML could not count the GPUs: GPU is lost",
    )


def test_uuid_failure_keeps_the_gpu(install_nvml: InstallNvml) -> None:
    install_nvml([A100_40GB], fail={"nvmlDeviceGetUUID": 3})

    (gpu,) = detect_host().gpus

    assert gpu.uuid is None
    assert gpu.name == "NVIDIA A100-SXM4-40GB"


@pytest.mark.parametrize(("value", "text"), [(12040, "12.4"), (11080, "11.8"), (13000, "13.0"), (12090, "12.9")])
def test_cuda_version_string(value: int, text: str) -> None:
    assert cuda_version_string(value) == text


def test_real_cpu_matches_proc_cpuinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc/cpuinfo").exists():
        pytest.skip("no /proc/cpuinfo (not Linux)")
    monkeypatch.setitem(sys.modules, "pynvml", None)
    text = Path("/proc/cpuinfo").read_text()
    flags_line = next(line for line in text.splitlines() if line.startswith(("flags", "Features")))
    expected = set(flags_line.split(":", 1)[1].split())

    host = detect_host()

    assert expected <= host.cpu.flags
    for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"):
        assert (flag in host.cpu.flags) == (flag in expected)
    assert host.cpu.model in text
    assert host.cpu.cores == len(os.sched_getaffinity(0))
    mem_total_kb = int(
        next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")).split()[1]
    )
    assert host.cpu.memory_total_bytes == mem_total_kb * 1024
    assert host.os == platform.system().lower()
    assert host.arch == normalise_arch(platform.machine(), host.os)
    libc, version = platform.libc_ver()
    assert host.glibc == (version if libc == "glibc" else None)
    assert host.source == "detected"


def test_this_machine_has_avx512_bf16() -> None:
    # FACTS.md: the CPU of these machines has AVX-512 with bf16.
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "avx512_bf16" not in text:
        pytest.skip("this CPU has no avx512_bf16")
    assert {"avx512f", "avx512_bf16"} <= detect_host().cpu.flags


def test_parse_cpuinfo_aarch64() -> None:
    text = (
        "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes sha2 crc32 atomics bf16 i8mm sve\n"
        "CPU implementer\t: 0x41\n\nprocessor\t: 1\nFeatures\t: fp asimd\n"
    )
    model, flags = parse_cpuinfo(text)
    assert model == ""
    assert {"neon", "asimd", "bf16", "sve"} <= flags


def test_parse_meminfo() -> None:
    assert parse_meminfo("MemTotal:       24684084 kB\nMemFree:        22457772 kB\n") == 24684084 * 1024
    assert parse_meminfo("nothing here") is None


@pytest.mark.parametrize(
    ("machine", "os_name", "arch"),
    [
        ("x86_64", "linux", "x86_64"),
        ("AMD64", "windows", "x86_64"),
        ("aarch64", "linux", "aarch64"),
        ("arm64", "linux", "aarch64"),
        ("arm64", "darwin", "arm64"),
        ("ppc64le", "linux", "ppc64le"),
    ],
)
def test_normalise_arch(machine: str, os_name: str, arch: str) -> None:
    assert normalise_arch(machine, os_name) == arch


def test_glibc_version_here() -> None:
    libc, version = platform.libc_ver()
    assert glibc_version() == (version if libc == "glibc" else None)
