"""`envman envs rm` and `envman envs gc` against builds: nothing a build holds or just finished is deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from envman.build import environments
from envman.errors import UsageError
from tests.envs.conftest import Cli, base_env, make_cli


def _complete(home: Path, name: str, fingerprint: str) -> Path:
    """A complete environment as a build leaves it: the folder, then its marker."""
    path = home / "envs" / name
    (path / "bin").mkdir(parents=True)
    marker = {
        "id": name, "path": str(path), "python": "3.11", "engine": "xllamacpp", "engine_version": "1",
        "variant": "cpu", "fingerprint": fingerprint, "lockfile": "x.txt", "lock_digest": "sha256:0",
        "created": "2026-12-01T00:00:00+00:00", "last_used": "2026-12-01T00:00:00+00:00",
    }  # fmt: skip
    (path / environments.MARKER).write_text(json.dumps(marker))
    return path


@pytest.fixture
def two(home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("ENVMAN_HOME", str(home))
    a = _complete(home, "xllamacpp-1-cpu-aaaaaaaaaaaa", "a" * 16)
    b = _complete(home, "xllamacpp-2-cpu-bbbbbbbbbbbb", "b" * 16)
    return a, b


@pytest.mark.parametrize("identifier", ["", " ", "-", "--", ".", "*", "xllamacpp", "cpu", "-cpu-"])
def test_rm_refuses_an_identifier_that_does_not_name_one_environment(
    two: tuple[Path, Path], home: Path, identifier: str
) -> None:
    with pytest.raises(UsageError) as raised:
        environments.find(identifier)
    assert "Traceback" not in raised.value.message
    assert all(p.is_dir() for p in two)


def test_rm_of_an_empty_identifier_with_one_environment_deletes_nothing(home: Path) -> None:
    only = _complete(home, "xllamacpp-1-cpu-aaaaaaaaaaaa", "a" * 16)
    cli = make_cli(home)
    for identifier in ("", "-", " "):
        result = cli("envs", "rm", identifier, timeout=60)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert only.is_dir()
    assert "does not name an environment" in cli("envs", "rm", "", timeout=60).stderr


def test_an_ambiguous_part_is_refused_with_the_candidates(two: tuple[Path, Path], home: Path) -> None:
    _complete(home, "vllm-0.32.0-cpu-cccccccccccc", "c" * 16)
    result = make_cli(home)("envs", "rm", "xllamacpp", timeout=60)
    assert result.returncode == 2
    assert "'xllamacpp' is ambiguous: it matches xllamacpp-1-cpu-aaaaaaaaaaaa, xllamacpp-2-cpu-bbbbbbbbbbbb" in (
        result.stderr.replace("\n", " ")
    )
    assert "vllm-0.32.0" not in result.stderr.split("matches", 1)[1].split("hint", 1)[0]
    assert all(p.is_dir() for p in two)


def test_rm_by_id_fingerprint_or_unique_part(two: tuple[Path, Path]) -> None:
    a, b = two
    assert environments.find(a.name) == a
    assert environments.find("bbbbbbbbbbbb") == b
    assert environments.find("xllamacpp-1") == a


# A build as environments.build makes one, in another process: take the fingerprint's lock,
# fill the folder, write the marker, release; each step waits for a line on stdin.
_BUILDER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from filelock import FileLock
    lock_path, env, marker = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    lock = FileLock(lock_path)
    lock.acquire()
    env.joinpath("bin").mkdir(parents=True)
    print("holding", flush=True)
    sys.stdin.readline()
    env.joinpath("envman-env.json").write_text(marker)
    lock.release()
    print("done", flush=True)
    """
)


def test_gc_does_not_delete_an_environment_a_build_completes_while_gc_runs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer's race (2 of 12 tries), made certain: the build finishes after gc has
    looked at the folder (incomplete) and before gc deletes it."""
    monkeypatch.setenv("ENVMAN_HOME", str(home))
    fingerprint = "d" * 16
    name = f"xllamacpp-1-cpu-{fingerprint[:12]}"
    env = home / "envs" / name
    marker = json.loads(json.dumps({
        "id": name, "path": str(env), "python": "3.11", "engine": "xllamacpp", "engine_version": "1",
        "variant": "cpu", "fingerprint": fingerprint, "lockfile": "x.txt", "lock_digest": "sha256:0",
        "created": "2026-12-01T00:00:00+00:00", "last_used": "2026-12-01T00:00:00+00:00",
    }))  # fmt: skip
    lock_path = environments.lock_path(env)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    builder = subprocess.Popen(
        [sys.executable, "-c", _BUILDER, str(lock_path), str(env), json.dumps(marker)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert builder.stdout is not None
    assert builder.stdin is not None
    assert builder.stdout.readline().strip() == "holding"
    measured = environments.disk_usage

    def finish_build_meanwhile(path: Path) -> int:
        size = measured(path)
        if path == env and builder.poll() is None:
            builder.stdin.write("go\n")  # type: ignore[union-attr]
            builder.stdin.flush()  # type: ignore[union-attr]
            assert builder.stdout.readline().strip() == "done"  # type: ignore[union-attr]
            builder.wait(10)
        return size

    monkeypatch.setattr(environments, "disk_usage", finish_build_meanwhile)
    from envman.matrix.load import load_matrix
    from tests.helpers import REPO

    removed = environments.gc(load_matrix(REPO / "matrix.toml"), 30 * 86400)

    assert builder.returncode == 0
    assert removed == []
    assert (env / environments.MARKER).is_file()


def test_gc_skips_an_incomplete_environment_a_build_holds_even_in_dry_run(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVMAN_HOME", str(home))
    env = home / "envs" / f"xllamacpp-1-cpu-{'e' * 12}"
    lock_path = environments.lock_path(env)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    builder = subprocess.Popen(
        [sys.executable, "-c", _BUILDER, str(lock_path), str(env), "{}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert builder.stdout is not None
    assert builder.stdin is not None
    try:
        assert builder.stdout.readline().strip() == "holding"
        cli = make_cli(home)
        for args in (("envs", "gc", "--dry-run"), ("envs", "gc")):
            result = cli(*args, timeout=60)
            assert result.returncode == 0, result.stderr
            assert env.name not in result.stdout
            assert env.is_dir()
        busy = cli("envs", "rm", env.name, timeout=60)
        assert busy.returncode == 1
        assert f"{env.name} is being built by another envman" in busy.stderr
        assert env.is_dir()
    finally:
        builder.stdin.write("go\n")
        builder.stdin.close()
        builder.wait(10)


@pytest.mark.network
def test_gc_in_a_loop_during_a_real_build_never_deletes_the_built_environment(home: Path, cli: Cli) -> None:
    """The reviewer's reproduction with real uv: gc over and over while xllamacpp builds."""
    argv = [sys.executable, "-m", "envman", "build", "smoke-gemma3", "--engine", "xllamacpp", "--json"]
    build = subprocess.Popen(argv, env=base_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = 0
    while build.poll() is None:
        gc = subprocess.run(
            [sys.executable, "-c", "from envman.cli._app import main; main()", "envs", "gc"],
            env=base_env(home), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert gc.returncode == 0, gc.stderr
        runs += 1
    out, err = build.communicate()
    assert build.returncode == 0, err
    built = Path(json.loads(out)["path"])
    assert (built / environments.MARKER).is_file(), f"gc ran {runs} times and deleted {built}"
    assert (built / "bin" / "python").exists()
    again = cli("build", "smoke-gemma3", "--engine", "xllamacpp", "--json")
    assert json.loads(again.stdout)["reused"] is True
    time.sleep(0)  # keeps the loop honest under -x
    os.sync()
