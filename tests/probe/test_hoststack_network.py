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
    assert kernels["vllm/_C.abi3.so"].sass == ("5.2", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0")
    assert kernels["torch/lib/libtorch_cuda.so (torch 2.6.0)"].sass == ("5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0")

    started = time.monotonic()
    again = probe_build("vllm", release)
    assert again == build.__class__(**{**build.__dict__, "seconds": 0.0})
    assert time.monotonic() - started < 5  # the release list is read again, the wheels are not
