"""The host check (envman.plan.requirements) against builds as the matrix records them.

Hosts are detected through a fake NVML (driver, GPUs) with the glibc set per case; the
builds are the real matrix entries that `envman probe --host-requirements --write` read from
vLLM's and torch's wheels on PyPI: vllm 0.8.5 (CUDA 12.4, torch 2.6.0: SASS 7.0-9.0, no
Blackwell), 0.20.0 (CUDA 13.0, manylinux_2_35) and 0.32.0 (CUDA 13.0, torch 2.13.0, no 7.0).
The driver floors are NVIDIA's (525.60.13 for 12.x, the 580 branch for 13.x).
"""

from __future__ import annotations

import itertools

import pytest

from envman.hardware import detect
from envman.hardware.detect import detect_host
from envman.matrix.schema import Matrix
from envman.plan.requirements import HostRequirements, check, manylinux_glibc, requirements_for
from tests.hardware.conftest import InstallNvml

# driver -> the CUDA version NVML reports for it (nvmlSystemGetCudaDriverVersion)
DRIVERS = {"470.256.02": 11040, "535.183.01": 12020, "550.54.15": 12040, "570.124.06": 12080, "580.65.06": 13000}
GPUS = {
    "V100": ("Tesla V100-SXM2-32GB", (7, 0), 32),
    "T4": ("Tesla T4", (7, 5), 15),
    "A100": ("NVIDIA A100-SXM4-80GB", (8, 0), 80),
    "H100": ("NVIDIA H100 80GB HBM3", (9, 0), 79.6),
    "RTX 4090": ("NVIDIA GeForce RTX 4090", (8, 9), 24),
    "RTX 5090": ("NVIDIA GeForce RTX 5090", (12, 0), 31.8),
    "B200": ("NVIDIA B200", (10, 0), 180),
}
GLIBCS = ("2.28", "2.31", "2.35")

# What each build refuses, written out (not computed): the driver floor of its CUDA major,
# the GPUs it has no kernels for, the glibc below its wheels'.
EXPECTED = {
    "0.8.5": {"min_driver": "525.60.13", "no_kernels": {"RTX 5090", "B200"}, "min_glibc": "2.14"},
    "0.20.0": {"min_driver": "580", "no_kernels": {"V100"}, "min_glibc": "2.35"},
    "0.32.0": {"min_driver": "580", "no_kernels": {"V100"}, "min_glibc": "2.28"},
}
CASES = list(itertools.product(EXPECTED, DRIVERS, GPUS, GLIBCS))


def _host(install_nvml: InstallNvml, monkeypatch: pytest.MonkeyPatch, driver: str, gpu: str, glibc: str):  # type: ignore[no-untyped-def]
    name, cc, memory = GPUS[gpu]
    install_nvml([{"name": name, "cc": cc, "total_gib": memory}], driver=driver, cuda=DRIVERS[driver])
    monkeypatch.setattr(detect, "glibc_version", lambda: glibc)
    return detect_host()


def _requirements(real_matrix: Matrix, version: str) -> HostRequirements:
    found = requirements_for(real_matrix, "vllm", version, "cuda")
    assert found is not None, f"matrix.toml has no host_requirements.vllm.cuda.{version!r}"
    return found


@pytest.mark.parametrize(("version", "driver", "gpu", "glibc"), CASES)
def test_host_check_table(
    real_matrix: Matrix,
    install_nvml: InstallNvml,
    monkeypatch: pytest.MonkeyPatch,
    version: str,
    driver: str,
    gpu: str,
    glibc: str,
) -> None:
    host = _host(install_nvml, monkeypatch, driver, gpu, glibc)
    assert host.driver_version == driver
    req = _requirements(real_matrix, version)
    reasons = check(req, host)
    expected = EXPECTED[version]
    assert req.min_driver == expected["min_driver"]
    want_driver = int(driver.split(".")[0]) < int(str(expected["min_driver"]).split(".")[0])
    assert any("upgrade the driver to >=" in r for r in reasons) == want_driver, reasons
    assert any("has no kernels in this build" in r for r in reasons) == (gpu in expected["no_kernels"]), reasons
    min_glibc = expected["min_glibc"]
    assert any(r.startswith(f"glibc {glibc} is older") for r in reasons) == (
        min_glibc is not None and glibc < str(min_glibc)
    ), reasons


def test_refusals_name_the_fact_and_the_way_out(
    real_matrix: Matrix, install_nvml: InstallNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = _requirements(real_matrix, "0.32.0")
    host = _host(install_nvml, monkeypatch, "550.54.15", "V100", "2.31")
    assert check(req, host) == [
        "the NVIDIA driver 550.54.15 is too old for the CUDA 13.0 runtime (CUDA 13.x needs >= 580): "
        "upgrade the driver to >= 580",
        "Tesla V100-SXM2-32GB (compute capability 7.0) has no kernels in this build: "
        "vllm/_C_stable_libtorch.abi3.so has SASS for 7.5, 8.0, 8.6, 8.9, 9.0, 10.0, 12.0 and PTX for 8.0, 8.9, 9.0; "
        "the build runs on compute capability 7.5, 8.0, 8.6, 8.9, 9.0, 10.0, 10.3, 12.0, 12.1",
    ]
    assert req.to_json() == {
        "cuda_runtime": "13.0",
        "min_driver": "580",
        # torch 2.13 has SASS for 10.3 and 12.1; vLLM's 10.0 and 12.0 SASS runs there (same major)
        "compute_capabilities": ["7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "10.3", "12.0", "12.1"],
        "ptx": [],
        "glibc": "2.28",
        "manylinux": "manylinux_2_28_x86_64",
        "evidence": req.evidence,
    }
    assert req.evidence.startswith("vllm-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl")


def test_an_unknown_driver_or_glibc_is_not_a_refusal(real_matrix: Matrix, gpu_table) -> None:  # type: ignore[no-untyped-def]
    from envman.hardware.spec import parse_hardware

    req = _requirements(real_matrix, "0.32.0")
    assert check(req, parse_hardware("H100x2", gpu_table)) == []
    named = parse_hardware("H100x2,driver=550.54.15,glibc=2.27", gpu_table)
    assert [r.split(":")[0] for r in check(req, named)] == [
        "the NVIDIA driver 550.54.15 is too old for the CUDA 13.0 runtime (CUDA 13.x needs >= 580)",
        "glibc 2.27 is older than the glibc 2.28 the build's wheels need (manylinux_2_28_x86_64)",
    ]


def test_a_cpu_host_has_no_cuda_needs(real_matrix: Matrix, gpu_table) -> None:  # type: ignore[no-untyped-def]
    from envman.hardware.spec import parse_hardware

    req = _requirements(real_matrix, "0.8.5")
    assert check(req, parse_hardware("cpu,glibc=2.36", gpu_table)) == []


@pytest.mark.parametrize(
    ("tag", "glibc"),
    [
        ("manylinux_2_28_x86_64", "2.28"),
        ("manylinux_2_35_x86_64", "2.35"),
        ("manylinux1_x86_64", "2.5"),
        ("manylinux2014_x86_64", "2.17"),
        ("linux_x86_64", None),
    ],
)
def test_manylinux_tags(tag: str, glibc: str | None) -> None:
    assert manylinux_glibc(tag) == glibc


@pytest.mark.parametrize(
    ("driver", "gpu", "glibc", "newest"),
    [
        ("550.54.15", "H100", "2.35", "0.19.1"),  # a 12.x driver: the last CUDA 12.8 release
        ("580.65.06", "H100", "2.35", "0.33.0"),
        ("580.65.06", "V100", "2.35", "0.19.1"),  # 0.20.0 dropped 7.0 (its SASS starts at 7.5)
        ("550.54.15", "B200", "2.31", "0.19.1"),  # CUDA 12.8 with Blackwell kernels in vLLM and torch
        # 0.10.2-0.11.2 are tagged manylinux1 but their libraries need GLIBC_2.29, 0.12+ 2.31: none is left
        ("550.54.15", "B200", "2.28", None),
        ("580.65.06", "H100", "2.28", "0.33.0"),
    ],
)
def test_the_newest_release_that_runs_here(
    real_matrix: Matrix,
    install_nvml: InstallNvml,
    monkeypatch: pytest.MonkeyPatch,
    driver: str,
    gpu: str,
    glibc: str,
    newest: str | None,
) -> None:
    from envman.plan.requirements import newest_runnable

    host = _host(install_nvml, monkeypatch, driver, gpu, glibc)
    found = newest_runnable(real_matrix, "vllm", "cuda", host)
    assert (str(found[0]) if found else None) == newest
