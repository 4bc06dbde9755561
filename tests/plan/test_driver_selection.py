"""``lock --driver`` and ``dockerfile --driver``: only the builds whose CUDA runtime the driver runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from envman.matrix.load import load_matrix
from envman.plan.requirements import driver_refusal

REPO = Path(__file__).resolve().parents[2]


def _envman(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENVMAN_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )


def test_driver_refusal_follows_nvidias_floor_per_cuda_major() -> None:
    matrix = load_matrix()
    assert driver_refusal(matrix, "vllm", "0.32.0", "cuda", "580.65.06") is None
    assert driver_refusal(matrix, "vllm", "0.19.1", "cuda", "550.54.15") is None
    assert driver_refusal(matrix, "vllm", "0.32.0", "cuda", "550.54.15") == (
        "vllm 0.32.0 (cuda): its CUDA 13.0 runtime needs an NVIDIA driver >= 580, 550.54.15 is older"
    )
    assert driver_refusal(matrix, "vllm", "0.32.0", "cpu", "470.1") is None  # a CPU build asks nothing


def test_lock_and_dockerfile_check_only_the_builds_the_driver_runs(tmp_path: Path) -> None:
    for verb, noun in (("lock", "lockfiles"), ("dockerfile", "Dockerfiles")):
        result = _envman(
            verb, "--engine", "vllm", "--variant", "cuda", "--driver", "550.54.15", "--check", home=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"1 {noun} up to date")  # 0.19.1 (CUDA 12.8), not 0.32.0 (CUDA 13)
        assert "skipped vllm 0.32.0 (cuda): its CUDA 13.0 runtime needs an NVIDIA driver >= 580" in result.stderr


def test_a_driver_that_runs_nothing_or_is_no_version_is_a_usage_error(tmp_path: Path) -> None:
    old = _envman("lock", "--engine", "vllm", "--variant", "cuda", "--driver", "470.256.02", "--check", home=tmp_path)
    assert old.returncode == 2
    assert "error: no selected build runs on driver 470.256.02" in old.stderr
    bad = _envman("dockerfile", "--driver", "new", "--check", home=tmp_path)
    assert bad.returncode == 2
    assert "error: --driver 'new' is not a driver version" in bad.stderr
    assert "Traceback" not in bad.stderr
