"""Fixtures for lockfile and environment tests: real uv, real PyPI, a private ENVMAN_HOME."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO, cli_env

Cli = Callable[..., subprocess.CompletedProcess[str]]
base_env = cli_env


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
