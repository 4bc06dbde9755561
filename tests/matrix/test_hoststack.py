"""The host-stack tables of matrix.toml: cuda_drivers and host_requirements, validated at load."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from envman.errors import ConfigError
from envman.matrix.load import parse_matrix
from envman.matrix.schema import Matrix

REPO_MATRIX = Path(__file__).resolve().parents[2] / "matrix.toml"

GOOD = """
[host_requirements.vllm.cuda."0.8.5"]
wheel = "vllm-0.8.5-cp38-abi3-manylinux1_x86_64.whl"
manylinux = "manylinux1_x86_64"
cuda_runtime = "12.4"
sonames = ["libcudart.so.12"]
glibc = "2.14"
torch = "2.6.0"
evidence = "read"
[[host_requirements.vllm.cuda."0.8.5".kernels]]
library = "vllm/_C.abi3.so"
sass = ["7.0", "9.0"]
ptx = []
"""


def _parse(extra: str) -> Matrix:
    text = REPO_MATRIX.read_text(encoding="utf-8").split("\n[host_requirements.", 1)[0] + extra
    return parse_matrix(text, REPO_MATRIX)


def test_the_driver_rules_load_with_their_source(real_matrix: Matrix) -> None:
    assert real_matrix.cuda_drivers[12].min_driver == "525.60.13"
    assert real_matrix.cuda_drivers[13].min_driver == "580"
    assert {rule.source for rule in real_matrix.cuda_drivers.values()} == {"artifact"}
    assert all("backend.rs" in rule.evidence for rule in real_matrix.cuda_drivers.values())


def test_a_build_record_loads() -> None:
    record = _parse(GOOD).build_requirements[("vllm", "cuda", "0.8.5")]
    assert record.version == Version("0.8.5")
    assert record.kernels[0].sass == ("7.0", "9.0")
    assert record.cuda_runtime == "12.4"


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('sass = ["7.0", "9.0"]', 'sass = ["sm_70"]', "kernels[0].sass[0]: 'sm_70' is not a compute capability (8.0)"),
        ('glibc = "2.14"', 'glibc = "glibc 2.14"', "glibc: 'glibc 2.14' is not a glibc version (2.28)"),
        ('cuda_runtime = "12.4"', 'cuda_runtime = "twelve"', "cuda_runtime: 'twelve' is not a CUDA version (12.4)"),
        ("host_requirements.vllm.cuda.", "host_requirements.vllm.rocm.", "vllm.rocm: unknown variant"),
        ('torch = "2.6.0"', 'torch = "2.6.0"\ntorhc = "x"', "unknown key (did you mean 'torch'?)"),
    ],
)
def test_a_broken_build_record_is_reported_with_its_key(old: str, new: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _parse(GOOD.replace(old, new))
    assert any(problem in line for line in raised.value.problems), raised.value.problems


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('min_driver = "525.60.13"', 'min_driver = "latest"', "min_driver: 'latest' is not a driver version"),
        ('source = "artifact"\nevidence = "uv-0.13.9.tar.gz (PyPI) crates/uv-torch/src/backend.rs l.769-781',
         'source = "memory"\nevidence = "uv-0.13.9.tar.gz (PyPI) crates/uv-torch/src/backend.rs l.769-781',
         "source: 'memory' is not one of: artifact, docs"),
    ],
)  # fmt: skip
def test_a_broken_driver_rule_is_reported(old: str, new: str, problem: str) -> None:
    text = REPO_MATRIX.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ConfigError) as raised:
        parse_matrix(text.replace(old, new, 1), REPO_MATRIX)
    assert any(problem in line for line in raised.value.problems), raised.value.problems
