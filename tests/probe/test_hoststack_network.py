"""The host-stack probe against real released wheels on PyPI (range requests, cached)."""

from __future__ import annotations

import time

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
