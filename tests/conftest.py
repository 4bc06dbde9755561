"""Shared fixtures: the real matrix.toml, and the CLI run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from envman.matrix.load import parse_matrix
from envman.matrix.schema import Matrix

REPO_MATRIX = Path(__file__).resolve().parents[1] / "matrix.toml"


@pytest.fixture(scope="session")
def real_matrix_path() -> Path:
    return REPO_MATRIX


@pytest.fixture(scope="session")
def real_matrix() -> Matrix:
    """The repository's matrix.toml, validated, without the user's index overrides."""
    return parse_matrix(REPO_MATRIX.read_text(encoding="utf-8"), REPO_MATRIX)


@pytest.fixture
def envman_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m envman ARGS`` with no user config and the repository's matrix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVMAN_")}
    env |= {
        "ENVMAN_HOME": str(tmp_path / "home"),
        "ENVMAN_CONFIG": str(tmp_path / "no-config.toml"),
        "ENVMAN_MATRIX": str(REPO_MATRIX),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "envman", *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )

    return run
