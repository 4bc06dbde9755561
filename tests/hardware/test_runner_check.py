"""The CI runner check (``envman ci runner-check``) with a fake NVML: GPU floors and the driver."""

from __future__ import annotations

import pytest
from packaging.version import Version

from envman.ci.matrix import rows, runner_check
from envman.errors import TargetError, UsageError
from envman.matrix.combinations import Combination
from envman.matrix.load import load_matrix
from envman.plan.requirements import requirements_for
from tests.hardware.conftest import InstallNvml

H100 = {"name": "NVIDIA H100 80GB HBM3", "cc": (9, 0), "total_gib": 80, "free_gib": 79.0}


def test_a_driver_older_than_the_build_needs_fails_the_runner(install_nvml: InstallNvml) -> None:
    install_nvml([H100], driver="550.54.15", cuda=12040)
    with pytest.raises(TargetError) as caught:
        runner_check("8.0", 20, "580.65.06")
    assert caught.value.message == (
        "this runner's NVIDIA driver (550.54.15) is older than the job's build needs: "
        "driver >= 580.65.06 for its CUDA runtime"
    )
    assert caught.value.hint == "upgrade the runner's driver to >= 580.65.06, or label it so this job does not pick it"


def test_a_new_enough_driver_passes_and_is_reported(install_nvml: InstallNvml) -> None:
    install_nvml([H100], driver="580.65.06", cuda=13000)
    assert runner_check("8.0", 20, "580.65.06").endswith("compute capability 9.0, 80.0 GiB, driver 580.65.06")
    assert runner_check("8.0", 20, "").endswith("driver 580.65.06")  # no probed need: not checked


def test_a_malformed_driver_floor_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--min-driver 'new' is not a driver version"):
        runner_check("8.0", 20, "new")


def test_each_gpu_row_carries_its_builds_driver_floor() -> None:
    matrix = load_matrix()
    wanted = [Combination("vllm", Version("0.19.1"), "cuda")]
    (row,) = rows(matrix, wanted)
    needs = requirements_for(matrix, "vllm", "0.19.1", "cuda")
    assert needs is not None
    assert row.min_driver == needs.min_driver == matrix.cuda_drivers[12].min_driver
