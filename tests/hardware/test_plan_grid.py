"""Plans across drivers x GPUs x glibc, on hosts detected through a fake NVML.

Each cell's expectation comes from the matrix's data (host_requirements, cuda_drivers, the
variant's limits, engine_rules) through the small rule below, written apart from the planner:
a build runs when the driver reaches NVIDIA's floor for its CUDA major, every core library
has SASS of the GPU's major at or below its capability (or PTX at or below it and a driver
for the build's CUDA), and the host's glibc reaches the wheels'. The planner picks the
family's known-good release if it runs, else the newest older probed release at or above the
family's floor that does; none: it refuses.
"""

from __future__ import annotations

from typing import Any

import pytest
from packaging.version import Version

from envman.errors import TargetError
from envman.hardware.detect import detect_host
from envman.matrix.load import load_matrix
from envman.matrix.schema import BuildRequirements, Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from tests.hardware.conftest import InstallNvml

GPUS: dict[str, dict[str, Any]] = {
    "V100": {"name": "Tesla V100-SXM2-32GB", "cc": (7, 0), "total_gib": 32, "free_gib": 31.5},
    "T4": {"name": "Tesla T4", "cc": (7, 5), "total_gib": 15, "free_gib": 14.5},
    "A100": {"name": "NVIDIA A100-SXM4-80GB", "cc": (8, 0), "total_gib": 80, "free_gib": 79.0},
    "H100": {"name": "NVIDIA H100 80GB HBM3", "cc": (9, 0), "total_gib": 80, "free_gib": 79.0},
    "RTX4090": {"name": "NVIDIA GeForce RTX 4090", "cc": (8, 9), "total_gib": 24, "free_gib": 23.5},
    "RTX5090": {"name": "NVIDIA GeForce RTX 5090", "cc": (12, 0), "total_gib": 32, "free_gib": 31.5},
    "B200": {"name": "NVIDIA B200", "cc": (10, 0), "total_gib": 180, "free_gib": 179.0},
}
# driver -> the CUDA version NVML reports for it (nvmlSystemGetCudaDriverVersion)
DRIVERS = {"470.256.02": 11040, "535.247.01": 12020, "550.163.01": 12040, "570.172.08": 12080, "580.95.05": 13000}
GLIBCS = ("2.28", "2.31", "2.35")
MODEL, FAMILY = "gemma-3-1b-it", "gemma3"


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix()


def _glibc_of(tag: str) -> Version:
    legacy = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}
    if tag.split("_")[0] in legacy:
        return Version(legacy[tag.split("_")[0]])
    return Version(".".join(tag.split("_")[1:3]))


def _runs(matrix: Matrix, build: BuildRequirements, cc: Version, driver: str, cuda: int, glibc: str) -> bool:
    assert build.cuda_runtime is not None
    runtime = Version(build.cuda_runtime)
    if Version(driver) < Version(matrix.cuda_drivers[runtime.major].min_driver):
        return False
    driver_cuda = Version(f"{cuda // 1000}.{cuda % 1000 // 10}")
    for library in build.kernels:
        native = any(Version(s).major == cc.major and Version(s) <= cc for s in library.sass)
        jit = any(Version(p) <= cc for p in library.ptx) and driver_cuda >= runtime
        if not (native or jit):
            return False
    needed = max([_glibc_of(build.manylinux)] + ([Version(build.glibc)] if build.glibc else []))
    return Version(glibc) >= needed


def _allowed_by_limits(matrix: Matrix, version: Version, cc: Version) -> bool:
    variant = matrix.engines["vllm"].variants["cuda"]
    return all(cc >= limit.min_compute_capability for limit in variant.limits if version in limit.versions)


def expected(matrix: Matrix, gpu: str, driver: str, glibc: str) -> tuple[str, str] | None:
    """``(version, dtype)`` the plan should have, or None for a refusal."""
    cc = Version("{}.{}".format(*GPUS[gpu]["cc"]))
    support = matrix.families[FAMILY].engines["vllm"]
    builds = {r.version: r for (e, v, _), r in matrix.build_requirements.items() if e == "vllm" and v == "cuda"}
    assert support.min_version is not None
    pin = support.known_good[-1]
    # the known-good pin, else the newest release older than the first one tried that runs here
    tried = pin if _allowed_by_limits(matrix, pin, cc) else max(v for v in builds if _allowed_by_limits(matrix, v, cc))
    order = [tried] + sorted((v for v in builds if support.min_version <= v < tried), reverse=True)
    chosen = next((v for v in order if _runs(matrix, builds[v], cc, driver, DRIVERS[driver], glibc)), None)
    if chosen is None:
        return None
    if cc >= Version("8.0"):
        return str(chosen), "bfloat16"
    rules = matrix.engine_rules["vllm"]
    refused = rules.refusal(chosen, matrix.families[FAMILY].model_types, "float16") is not None
    return str(chosen), "float32" if refused else "float16"


CELLS = [(gpu, driver, glibc) for gpu in GPUS for driver in DRIVERS for glibc in GLIBCS]


@pytest.mark.parametrize(("gpu", "driver", "glibc"), CELLS, ids=["-".join(c) for c in CELLS])
def test_the_plan_follows_the_host_stack(
    matrix: Matrix, install_nvml: InstallNvml, monkeypatch: pytest.MonkeyPatch, gpu: str, driver: str, glibc: str
) -> None:
    install_nvml([GPUS[gpu]], driver=driver, cuda=DRIVERS[driver])
    monkeypatch.setattr("envman.hardware.detect.glibc_version", lambda: glibc)
    host = detect_host()
    assert (host.driver_version, host.glibc) == (driver, glibc)
    want = expected(matrix, gpu, driver, glibc)
    request = PlanRequest(model=MODEL, engine="vllm")
    if want is None:
        with pytest.raises(TargetError) as caught:
            Planner(matrix, host).plan(request)
        message = caught.value.message
        assert "nothing can serve" in message
        if Version(driver) < Version(matrix.cuda_drivers[12].min_driver):
            assert "upgrade the driver to >= 525.60.13" in message
        return
    plan = Planner(matrix, host).plan(request)
    assert (str(plan.engine_version), plan.dtype) == want


def test_the_grid_is_not_one_answer(matrix: Matrix) -> None:
    """The cells differ in the ways the facts say: guards against a rule that always agrees."""
    answers = {cell: expected(matrix, *cell) for cell in CELLS}
    assert answers[("H100", "580.95.05", "2.35")] == ("0.32.0", "bfloat16")
    assert answers[("A100", "550.163.01", "2.35")] == ("0.19.1", "bfloat16")  # CUDA 13 needs 580
    assert answers[("V100", "580.95.05", "2.35")] == ("0.19.1", "float32")  # 0.20 dropped 7.0; no fp16 for gemma3
    assert answers[("T4", "580.95.05", "2.35")] == ("0.32.0", "float32")
    assert all(answers[(gpu, "470.256.02", g)] is None for gpu in GPUS for g in GLIBCS)  # CUDA 12 needs 525.60.13
    assert answers[("A100", "550.163.01", "2.28")] != answers[("A100", "550.163.01", "2.35")]  # 0.19.1: glibc 2.31
