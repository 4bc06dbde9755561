"""`envman verify`: real smokes of the known-good combinations, the report, --record."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

from tests.envs.conftest import REPO, base_env

pytestmark = [pytest.mark.engine, pytest.mark.network]


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], env=base_env(home) | env, capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    target.mkdir()
    shutil.copy(REPO / "matrix.toml", target / "matrix.toml")
    shutil.copytree(REPO / "lockfiles", target / "lockfiles")
    return target


def test_verify_smokes_reports_and_records(tmp_path: Path, repo_copy: Path) -> None:
    home = tmp_path / "home"
    matrix = repo_copy / "matrix.toml"
    report = tmp_path / "report.md"

    result = run(home, "verify", "--engine", "xllamacpp", "--jobs", "2", "--report", str(report), "--record",
                 ENVMAN_MATRIX=str(matrix))  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for family in ("gemma2", "gemma3", "llama", "mistral", "phi3", "qwen2", "qwen3"):
        assert any(line.startswith(f"PASS  {family} × xllamacpp 2026.10.11549 (cpu)") for line in lines), family
    assert any(line.startswith("SKIP  deepseek_v3 × xllamacpp 2026.10.11549 (cpu): no smoke model") for line in lines)
    summary = next(line for line in lines if line.endswith("skipped"))
    assert summary.startswith("7 passed, 0 failed, ")

    text = report.read_text()
    assert "| family | engine | version | variant | result | seconds | detail |" in text
    assert "| gemma3 | xllamacpp | 2026.10.11549 | cpu | pass |" in text
    assert "| deepseek_v3 | xllamacpp | 2026.10.11549 | cpu | skip |" in text

    doc = tomlkit.parse(matrix.read_text())
    verified = doc["families"]["gemma3"]["engines"]["xllamacpp"]["verified"]  # type: ignore[index]
    assert [(v["version"], v["variant"]) for v in verified] == [("2026.10.11549", "cpu")]  # type: ignore[union-attr]
    assert str(verified[0]["evidence"]).startswith("envman verify: smoke of smoke-gemma3 passed")  # type: ignore[index]
    # comments and layout are kept: only the verified tables were added
    before = (REPO / "matrix.toml").read_text()
    assert matrix.read_text().startswith(before.split("[families.gemma3.engines.vllm]")[0])
    assert "# envman matrix: what runs where, and the evidence for it." in matrix.read_text()
    # the recorded matrix is still a valid matrix
    assert run(home, "matrix", "--check", ENVMAN_MATRIX=str(matrix)).returncode == 0


def test_a_failing_known_good_combination_fails_verify(tmp_path: Path, repo_copy: Path) -> None:
    """A 2-layer gemma3 GGUF crashes xllamacpp 0.2.0; calling 0.2.0 known good must fail verify."""
    home = tmp_path / "home"
    matrix = repo_copy / "matrix.toml"
    text = matrix.read_text()
    block_start = text.index("[models.smoke-gemma3]")
    block_end = text.index("\n[", block_start + 10)
    text = text[:block_start] + text[block_start:block_end].replace("layers = 6", "layers = 2") + text[block_end:]
    text = text.replace(
        'known_good = ["2026.10.11549"]\nformats = ["gguf"]', 'known_good = ["0.2.0"]\nformats = ["gguf"]', 1
    )
    text = text.replace('"0.1.11" = "2025-03-21"', '"0.1.11" = "2025-03-21"\n"0.2.0" = "2025-08-28"', 1)
    matrix.write_text(text)
    env = {"ENVMAN_MATRIX": str(matrix)}
    locked = run(home, "lock", "--engine", "xllamacpp", "--version", "0.2.0", "--variant", "cpu", **env)
    assert locked.returncode == 0, locked.stderr

    result = run(home, "verify", "--family", "gemma3", "--engine", "xllamacpp", **env)

    assert result.returncode == 1, result.stdout + result.stderr
    fail = [line for line in result.stdout.splitlines() if line.startswith("FAIL  gemma3 × xllamacpp 0.2.0 (cpu)")]
    assert fail, result.stdout
    assert "the engine crashed in native code" in fail[0]
