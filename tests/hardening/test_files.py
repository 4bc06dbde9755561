"""envman.files: what atomic_write leaves behind, and the permissions it gives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from envman.errors import PrerequisiteError, UsageError
from envman.files import atomic_write, confined


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umask_not_0600(tmp_path: Path) -> None:
    """mkstemp makes its file 0600: a lockfile, Dockerfile or matrix.toml must stay readable to others."""
    old = os.umask(0o022)
    try:
        assert mode(atomic_write(tmp_path / "lockfile.txt", "x")) == 0o644
    finally:
        os.umask(old)


def test_a_rewritten_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "matrix.toml"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, "new")
    assert (target.read_text(), mode(target)) == ("new", 0o640)


def test_an_explicit_mode_wins(tmp_path: Path) -> None:
    assert mode(atomic_write(tmp_path / "secret", "k", mode=0o600)) == 0o600


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()  # os.replace onto a folder fails
    with pytest.raises(PrerequisiteError):
        atomic_write(tmp_path / "target", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["target"]


@pytest.mark.parametrize("relative", ["../x", "/etc/passwd", "a/../../x", "", "a\\..\\x"])
def test_confined_refuses_paths_that_leave_the_root(tmp_path: Path, relative: str) -> None:
    with pytest.raises(UsageError):
        confined(tmp_path, relative)


def test_confined_refuses_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(UsageError, match="through a symbolic link"):
        confined(tmp_path / "root", "link/x.gguf")
    assert confined(tmp_path / "root", "sub/x.gguf") == tmp_path / "root" / "sub" / "x.gguf"
