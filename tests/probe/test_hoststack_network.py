"""The host-stack probe against real released wheels on PyPI (range requests, cached)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from envman import pypi
from envman.probe.hoststack.stack import probe_build

pytestmark = pytest.mark.network


def test_vllm_0_8_5_needs_cuda_12_4_and_has_no_blackwell_kernels_in_its_torch() -> None:
    release = next(r for r in pypi.releases("vllm") if str(r.version) == "0.8.5")
    build = probe_build("vllm", release)
    assert build.wheel == "vllm-0.8.5-cp38-abi3-manylinux1_x86_64.whl"
    assert build.manylinux == "manylinux1_x86_64"
    assert "libcudart.so.12" in build.sonames
    assert build.cuda_runtime == "12.4"
    assert build.cuda_runtime_from.startswith("nvidia-cuda-runtime-cu12==12.4.127 (torch-2.6.0-")
    assert build.torch == "2.6.0"
    kernels = {k.library: k for k in build.kernels}
    assert kernels["vllm/_C.abi3.so"].sass == (
        "5.2",
        "7.0",
        "7.5",
        "8.0",
        "8.6",
        "8.9",
        "9.0",
        "9.0a",
    )  # cutlass 3.x kernels are sm_90a
    torch_sass = ("5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0", "9.0a")  # torch's own sm_90a kernels
    assert kernels["torch/lib/libtorch_cuda.so (torch 2.6.0)"].sass == torch_sass

    started = time.monotonic()
    again = probe_build("vllm", release)
    assert again == build.__class__(**{**build.__dict__, "seconds": 0.0})
    assert time.monotonic() - started < 5  # the release list is read again, the wheels are not


def test_sm_90a_is_read_from_a_real_fatbin_and_plain_sm_90_is_not() -> None:
    """vllm-0.8.5's FlashMLA library is built for "9.0a" only (cmake/external_projects/flashmla.cmake);
    its _moe_C for plain sm_70 ... sm_90. The fat binary entries' flags tell them apart."""
    from envman.probe.hoststack.stack import cuda_wheel
    from envman.probe.hoststack.wheel import wheel_facts

    release = next(r for r in pypi.releases("vllm") if str(r.version) == "0.8.5")
    wheel = cuda_wheel(release)
    assert wheel is not None
    wanted = ("vllm/_flashmla_C.abi3.so", "vllm/_moe_C.abi3.so")
    facts = wheel_facts(wheel, lambda name: name in wanted, key="sm90a-test")
    by = {lib.member: lib for lib in facts.libraries}
    assert by["vllm/_flashmla_C.abi3.so"].sass == ("9.0a",)
    assert by["vllm/_moe_C.abi3.so"].sass == ("7.0", "7.5", "8.0", "8.6", "8.9", "9.0")


REPO = Path(__file__).resolve().parents[2]


def _release(package: str, version: str) -> pypi.Release:
    return next(r for r in pypi.releases(package) if str(r.version) == version)


def test_lmdeploy_takes_the_torch_of_its_committed_lock() -> None:
    """lmdeploy 0.18.0 pins no torch: the lock's torch 2.10.0 (CUDA 12.8) is read with TurboMind."""
    lock = REPO / "lockfiles" / "lmdeploy-0.18.0-cuda-py3.11.txt"
    build = probe_build("lmdeploy", _release("lmdeploy", "0.18.0"), lock=lock)
    assert build.torch == "2.10.0"
    assert build.cuda_runtime == "12.8"
    assert build.cuda_runtime_from.startswith("nvidia-cuda-runtime-cu12==12.8.90 (torch-2.10.0-")
    assert "libcudart.so.12" in build.sonames
    assert "libcublas.so.12" in build.sonames
    kernels = {k.library: k for k in build.kernels}
    turbomind = kernels["lmdeploy/turbomind/_turbomind.cpython-311-x86_64-linux-gnu.so"]
    assert turbomind.sass == ("7.0", "7.5", "8.0", "8.6", "8.9", "9.0a", "10.0a", "12.0a")
    assert "torch/lib/libtorch_cuda.so (torch 2.10.0)" in kernels
    assert "torch==2.10.0 at lockfiles/lmdeploy-0.18.0-cuda-py3.11.txt:" in build.evidence
    assert build.notes == ()


def test_a_lock_with_a_cuda_13_torch_beside_turbomind_is_flagged(tmp_path: Path) -> None:
    """The defect of lmdeploy 0.18.0's first lock: torch 2.12.1 pins cuda-toolkit 13.0.2."""
    lock = tmp_path / "lockfiles" / "lmdeploy-0.18.0-cuda-py3.11.txt"
    lock.parent.mkdir()
    lock.write_text("lmdeploy==0.18.0 \\\n    --hash=sha256:00\ntorch==2.12.1 \\\n    --hash=sha256:00\n")
    build = probe_build("lmdeploy", _release("lmdeploy", "0.18.0"), lock=lock)
    assert build.cuda_runtime == "13.0"
    assert build.notes == (
        "the engine links libcudart.so.12 but the pins select CUDA 13.0: a lock of this build mixes CUDA majors",
    )


def test_sglang_kernels_come_from_the_sglang_kernel_wheel_it_pins() -> None:
    """sglang's own wheel has no GPU code; sglang-kernel 0.4.10's common_ops has none for 7.5."""
    from envman.hardware.cuda import usable_sass

    build = probe_build("sglang", _release("sglang", "0.5.23"))
    kernels = {k.library: k for k in build.kernels}
    for member in ("sgl_kernel/sm100/common_ops.abi3.so", "sgl_kernel/sm90/common_ops.abi3.so"):
        assert kernels[f"{member} (sglang-kernel 0.4.10)"].sass == ("8.0", "8.9", "9.0", "9.0a", "10.0f", "12.0a")
    assert "libcudart.so.13" in build.sonames
    assert build.cuda_runtime == "13.0"
    assert build.torch == "2.14.1"
    assert "sglang_kernel-0.4.10-cp310-abi3-manylinux2014_x86_64.whl sgl_kernel/sm100/common_ops.abi3.so" in (
        build.evidence
    )
    usable = usable_sass([(k.sass, k.ptx) for k in build.kernels])
    assert usable == ("8.0", "8.6", "8.9", "9.0", "10.0", "10.3", "12.0")  # torch has 7.5, sgl-kernel does not
