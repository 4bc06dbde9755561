"""Docker tests run against a real daemon: scripts/ci-docker-setup starts one (and builds the
local base image) when none answers; a machine where that fails fails these tests, loudly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "envman-test/python:3.11-slim-bookworm"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _daemon_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "image", "inspect", BASE_IMAGE], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def docker_daemon() -> str:
    """A daemon that answers and has the stand-in base image; started by scripts/ci-docker-setup."""
    if not _daemon_answers():
        setup = subprocess.run(
            [str(REPO / "scripts" / "ci-docker-setup")], capture_output=True, text=True, timeout=900, check=False
        )
        if setup.returncode != 0 or not _daemon_answers():
            pytest.fail(
                "no Docker daemon with the base image "
                f"{BASE_IMAGE}: scripts/ci-docker-setup exited {setup.returncode}:\n{setup.stderr[-3000:]}"
            )
    return BASE_IMAGE


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """``python -m envman ARGS`` with the repository's matrix, no user config, and ``extra`` env."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ENVMAN_")}
    base |= {
        "ENVMAN_HOME": str(tmp_path / "home"),
        "ENVMAN_CONFIG": str(tmp_path / "no-config.toml"),
        "ENVMAN_MATRIX": str(REPO / "matrix.toml"),
    }

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "envman", *args],
            capture_output=True,
            text=True,
            env=base | (env or {}),
            timeout=timeout,
            check=False,
        )

    return run
