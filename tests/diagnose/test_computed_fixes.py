"""Fixes computed from the matrix's facts: which release runs on this driver or GPU, which allows
float16 for a model type, which plugin a quantization method moved to. The messages are the
engines' own, rendered from the f-strings in their released wheels (checked by the network test)."""

from __future__ import annotations

import pytest

from envman import pypi
from envman.diagnose import diagnose
from envman.matrix.load import load_matrix
from envman.matrix.schema import Matrix
from envman.probe.hoststack.remote import RemoteWheel
from envman.probe.hoststack.stack import cuda_wheel

# vllm 0.19.1 config/model.py: f"The model type {model_type!r} does not support float16. Reason: {reason}"
FLOAT16 = (
    "ValueError: The model type 'gemma3' does not support float16. "
    "Reason: Numerical instability. Please use bfloat16 or float32 instead."
)
# vllm 0.28.0 config/model.py: f"Unknown quantization method: {self.quantization}. Must be one of ..."
BNB = "ValueError: Unknown quantization method: bitsandbytes. Must be one of ['awq', 'fp8']."
DRIVER = "RuntimeError: The NVIDIA driver on your system is too old (found version 12040)."


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix()


def _fix(matrix: Matrix, text: str, finding: str, engine: str | None = "vllm") -> str:
    found = {f.id: f for f in diagnose(text, matrix, engine=engine)}
    return found[finding].fix


def test_float16_refused_names_the_dtypes_and_the_newest_release_that_allows_it(matrix: Matrix) -> None:
    assert _fix(matrix, FLOAT16, "float16-refused") == (
        "vllm <=0.33.0,>=0.9.1 refuses float16 for gemma3: pass --dtype bfloat16 on compute capability 8.0 or newer, "
        "--dtype float32 on older GPUs (twice the weight memory), or vllm 0.9.0.1 (the newest release that allows "
        "float16); envman plan chooses for the GPU"
    )


def test_a_quantization_method_that_moved_to_a_plugin_names_the_plugin(matrix: Matrix) -> None:
    assert _fix(matrix, BNB, "unknown-quantization-method") == (
        "vllm >=0.28.0 registers 'bitsandbytes' only through the plugin package vllm-bnb-plugin: install it beside "
        "vllm (or lock it in), or use an older release (vllm releases <0.28.0,>=0.7.0 have 'bitsandbytes' in-tree)"
    )


def test_found_version_12040_names_the_newest_release_of_the_drivers_cuda_line(matrix: Matrix) -> None:
    assert _fix(matrix, DRIVER, "cuda-driver-too-old") == (
        "the driver supports CUDA 12.4: upgrade the driver to >= 580 for CUDA 13.x builds, "
        "or use the newest release of its line: vllm 0.19.1 (CUDA 12.8)"
    )


def test_no_kernel_image_names_the_newest_release_with_kernels_per_gpu(matrix: Matrix) -> None:
    fix = _fix(matrix, "CUDA error: no kernel image is available for execution on the device", "no-kernel-image")
    assert "V100 (7.0): vllm 0.19.1;" in fix  # 0.20.0 dropped sm_70 (host_requirements)
    assert "B200 (10.0): vllm 0.33.0" in fix


@pytest.mark.network
@pytest.mark.parametrize(
    ("version", "member", "source"),
    [
        (
            "0.19.1",
            "vllm/config/model.py",
            'f"The model type {model_type!r} does not support float16. Reason: {reason}"',
        ),
        ("0.28.0", "vllm/config/model.py", 'f"Unknown quantization method: {self.quantization}. Must "'),
    ],
)
def test_the_messages_are_the_released_wheels_own(version: str, member: str, source: str) -> None:
    release = next(r for r in pypi.releases("vllm") if str(r.version) == version)
    wheel = cuda_wheel(release)
    assert wheel is not None
    with RemoteWheel(wheel.url) as whl:
        text = whl.read(member).decode()
    assert source in text
