from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def envman_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ENVMAN_HOME for the whole session, so each artifact downloads once."""
    return tmp_path_factory.mktemp("envman-home")


@pytest.fixture(autouse=True)
def _isolated_home(envman_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVMAN_HOME", str(envman_home))
    monkeypatch.delenv("ENVMAN_PYPI_URL", raising=False)
