"""A lockfile's header is sealed too: an edited input is refused by `build` and named by `lock --check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envman.errors import ConfigError
from envman.lock import lockfile
from tests.envs.conftest import make_cli
from tests.helpers import REPO

XLLAMACPP = "xllamacpp-2026.10.11549-cpu-py3.11.txt"
EDITS = [
    ("# python: 3.11", "# python: 3.12"),
    ("# platform: x86_64-manylinux_2_28", "# platform: aarch64-manylinux_2_28"),
    ("# requirement: xllamacpp==2026.10.11549", "# requirement: xllamacpp==2026.9.11063"),
    ("# exclude: []", '# exclude: ["numpy"]'),
    ("# overrides: []", '# overrides: ["numpy<2"]'),
    ("# exclude_newer: 2026-10-11T00:00:00Z", "# exclude_newer: 2027-01-01T00:00:00Z"),
    ("# variant: cpu", "# variant: cuda"),
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    target.mkdir()
    shutil.copy(REPO / "matrix.toml", target / "matrix.toml")
    shutil.copytree(REPO / "lockfiles", target / "lockfiles")
    return target


def edit(repo: Path, old: str, new: str) -> Path:
    lock = repo / "lockfiles" / XLLAMACPP
    text = lock.read_text()
    assert text.count(old + "\n") == 1
    lock.write_text(text.replace(old + "\n", new + "\n"))
    return lock


@pytest.mark.parametrize(("old", "new"), EDITS)
def test_an_edited_header_is_refused_by_verify(repo: Path, old: str, new: str) -> None:
    lock = edit(repo, old, new)
    with pytest.raises(ConfigError) as caught:
        lockfile.read(lock).verify()
    assert caught.value.message.startswith(f"lockfile {lock} was modified after it was generated: its header")


@pytest.mark.parametrize(("old", "new"), EDITS[:4])
def test_lock_check_and_build_name_an_edited_header(repo: Path, tmp_path: Path, old: str, new: str) -> None:
    lock = edit(repo, old, new)
    cli = make_cli(tmp_path / "home", ENVMAN_MATRIX=str(repo / "matrix.toml"))

    checked = cli("lock", "--check", timeout=120)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"{lock}: lockfile {lock} was modified after it was generated: its header" in checked.stdout

    built = cli("build", "smoke-gemma3", "--engine", "xllamacpp", timeout=120)
    assert built.returncode == 2, built.stdout + built.stderr
    assert f"error: lockfile {lock} was modified after it was generated: its header" in built.stderr
    assert "nothing was installed" in built.stderr
    assert not (tmp_path / "home" / "envs").exists() or not [
        p for p in (tmp_path / "home" / "envs").iterdir() if not p.name.startswith(".")
    ]


def test_a_recomputed_inputs_line_is_still_stale_against_the_matrix(repo: Path, tmp_path: Path) -> None:
    """Edit python and recompute the inputs digest to match: the matrix still asks for 3.11."""
    lock = edit(repo, "# python: 3.11", "# python: 3.12")
    found = lockfile.read(lock)
    forged = lockfile.header_inputs_digest(found.header)
    lock.write_text(lock.read_text().replace(f"# inputs: {found.inputs}", f"# inputs: {forged}"))
    checked = make_cli(tmp_path / "home", ENVMAN_MATRIX=str(repo / "matrix.toml"))("lock", "--check", timeout=120)
    assert checked.returncode == 1
    assert f"{lock}: stale: the matrix changed since it was locked" in checked.stdout


def test_a_duplicated_header_key_is_refused(repo: Path) -> None:
    lock = edit(repo, "# python: 3.11", "# python: 3.11\n# python: 3.12")
    with pytest.raises(ConfigError, match="is not an envman lockfile"):
        lockfile.read(lock)


def test_the_committed_lockfiles_verify() -> None:
    for path in sorted((REPO / "lockfiles").glob("*.txt")):
        lockfile.read(path).verify()
