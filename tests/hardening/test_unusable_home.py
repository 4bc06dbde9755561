"""ENVMAN_HOME that is a file, read-only or full: exit 3 naming the path and the cause, nothing half-written.

Read-only and full homes are real file systems: as root (who ignores permission bits) a
read-only tmpfs and a 64 KiB tmpfs mounted for the test; as another user a 0555 folder.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.envs.conftest import make_cli

COMMANDS = [
    ("build", "smoke-gemma3", "--engine", "xllamacpp"),
    ("smoke", "smoke-gemma3", "--engine", "xllamacpp"),
    ("up", "smoke-gemma3", "--engine", "xllamacpp", "--port", "0"),
]


@contextlib.contextmanager
def mounted(target: Path, options: str) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@contextlib.contextmanager
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "ro-home"
    if os.geteuid() == 0:
        with mounted(home, "ro,size=64k") as path:
            yield path
    else:
        home.mkdir()
        home.chmod(0o555)
        try:
            yield home
        finally:
            home.chmod(0o755)


def leftovers(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.name.endswith(".tmp")] if home.is_dir() else []


def assert_exit_3(result: subprocess.CompletedProcess[str], path: Path, cause: str) -> None:
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr
    assert cause in result.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_file_as_envman_home(tmp_path: Path, args: tuple[str, ...]) -> None:
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    result = make_cli(home)(*args, timeout=120)
    assert_exit_3(result, home, "it is a file, not a folder")
    assert home.read_text() == "not a folder"


@pytest.mark.parametrize("args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_read_only_envman_home(tmp_path: Path, args: tuple[str, ...]) -> None:
    with read_only_home(tmp_path) as home:
        result = make_cli(home)(*args, timeout=120)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert str(home) in result.stderr
        assert "Read-only file system" in result.stderr or "read-only" in result.stderr
        assert leftovers(home) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs needs root")
@pytest.mark.parametrize("args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_full_envman_home(tmp_path: Path, args: tuple[str, ...]) -> None:
    """64 KiB: neither the environment nor the smoke model fits."""
    with mounted(tmp_path / "full-home", "size=64k") as home:
        result = make_cli(home)(*args, timeout=300)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "No space left on device" in result.stderr
        assert str(home) in result.stderr
        assert leftovers(home) == []
        assert not [p for p in (home / "models").rglob("*") if p.is_file()] if (home / "models").exists() else True
