"""Fixtures for the server lifecycle: a fake engine (a stdlib HTTP server) run as the engine."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from envman.run.process import members
from envman.run.server import ServerCommand, free_port
from tests.helpers import REPO, cli_env

__all__ = ["REPO", "cli_env"]  # used by the tests beside this file

FAKE_ENGINE = Path(__file__).resolve().parent / "fake_engine.py"

MakeCommand = Callable[..., ServerCommand]


@pytest.fixture
def fake_command() -> MakeCommand:
    """``fake_command(FAKE_READY_AFTER="0.5", ...)``: the fake engine on a free port."""

    def make(**behaviour: str) -> ServerCommand:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_")} | behaviour
        argv = (sys.executable, str(FAKE_ENGINE), "--port", str(port))
        return ServerCommand(argv, env, f"http://127.0.0.1:{port}", "/health")

    return make


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_gone(pgid: int, timeout: float = 5.0) -> list[int]:
    """The group's live members once they are gone, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    left = [p.pid for p in members(pgid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p.pid for p in members(pgid)]
    return left


@pytest.fixture(scope="session")
def engines_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ENVMAN_HOME for the real-engine tests: each environment is built once per session."""
    return tmp_path_factory.mktemp("engines") / "home"
