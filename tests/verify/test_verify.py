"""`envman verify`: real smokes, CI's sample (one cell per engine), the report, --record."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

from envman.verify.record import orphans
from tests.envs.conftest import REPO, base_env
from tests.helpers import share_envs

pytestmark = [pytest.mark.engine, pytest.mark.network]


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], env=base_env(home) | env, capture_output=True, text=True,
        timeout=1800, check=False,
    )  # fmt: skip


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    target.mkdir()
    shutil.copy(REPO / "matrix.toml", target / "matrix.toml")
    shutil.copytree(REPO / "lockfiles", target / "lockfiles")
    shutil.copytree(REPO / "evidence", target / "evidence")
    return target


@pytest.mark.parametrize("engine", ["xllamacpp", "llama-cpp-python", "mlx-lm", "transformers"])
def test_the_sample_smokes_one_cell_per_engine_and_records_it(
    tmp_path: Path, repo_copy: Path, shared_envs: Path, engine: str
) -> None:
    """CI's smoke: the newest known-good version on gemma3 (vLLM's one CPU cell is tests/run's)."""
    home = share_envs(tmp_path / "home", shared_envs)
    matrix = repo_copy / "matrix.toml"
    report = tmp_path / "report.md"

    result = run(home, "verify", "--sample", "--engine", engine, "--report", str(report), "--record",
                 ENVMAN_MATRIX=str(matrix))  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    passed = [line for line in result.stdout.splitlines() if line.startswith("PASS  ")]
    assert len(passed) == 1, result.stdout
    assert passed[0].startswith(f"PASS  gemma3 × {engine} "), passed
    assert "verify: [1/" in result.stderr
    version = passed[0].split()[4]
    assert f"## {engine} (cpu): 1 passed, 0 failed" in report.read_text()

    support = tomlkit.parse(matrix.read_text())["families"]["gemma3"]["engines"][engine]  # type: ignore[index]
    entry = next(v for v in support["verified"] if v["version"] == version)  # type: ignore[union-attr,index]
    record = json.loads((repo_copy / str(entry["evidence"])).read_text())  # type: ignore[index]
    assert record["result"] == "passed"
    assert record["lock"]["digest"] == entry["lock"]  # type: ignore[index]
    assert orphans(matrix) == (set(), set())  # the new record is named, the replaced one is gone or kept named
    # comments and layout are kept, and the recorded matrix is still a valid matrix
    assert "# envman matrix: what runs where, and the evidence for it." in matrix.read_text()
    assert run(home, "matrix", "--check", ENVMAN_MATRIX=str(matrix)).returncode == 0


def test_a_failing_known_good_combination_fails_verify(tmp_path: Path, repo_copy: Path) -> None:
    """A 2-layer gemma3 GGUF crashes xllamacpp 0.2.0; calling 0.2.0 known good must fail verify."""
    home = tmp_path / "home"
    matrix = repo_copy / "matrix.toml"
    doc = tomlkit.parse(matrix.read_text())
    doc["models"]["smoke-gemma3"]["layers"] = 2  # type: ignore[index]
    support = doc["families"]["gemma3"]["engines"]["xllamacpp"]  # type: ignore[index]
    support["known_good"] = ["0.2.0"]  # type: ignore[index]
    support.pop("known_bad", None)  # type: ignore[union-attr]
    doc["engines"]["xllamacpp"]["releases"]["0.2.0"] = "2025-08-28"  # type: ignore[index]
    matrix.write_text(tomlkit.dumps(doc))
    env = {"ENVMAN_MATRIX": str(matrix)}
    locked = run(home, "lock", "--engine", "xllamacpp", "--version", "0.2.0", "--variant", "cpu", **env)
    assert locked.returncode == 0, locked.stderr

    result = run(home, "verify", "--family", "gemma3", "--engine", "xllamacpp", **env)

    assert result.returncode == 1, result.stdout + result.stderr
    fail = [line for line in result.stdout.splitlines() if line.startswith("FAIL  gemma3 × xllamacpp 0.2.0 (cpu)")]
    assert fail, result.stdout
    assert "the engine crashed in native code" in fail[0]
