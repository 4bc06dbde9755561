"""Fixtures for the hostile-review tests: a private ENVMAN_HOME and the CLI run as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.envs.conftest import Cli, make_cli


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(home: Path) -> Cli:
    return make_cli(home)
