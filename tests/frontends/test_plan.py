"""--frontend xinference in the plan: which release, which engine release it can drive, the pair's
flags and packages, the known-bad pairs, and the locks of the known-good pairs (no environment)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from envman.errors import TargetError, UsageError
from envman.hardware.spec import parse_hardware
from envman.lock.locks import lockfiles_dir, request_for
from envman.matrix.combinations import Combination, frontend_known_good
from envman.matrix.schema import Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from tests.helpers import cli_env


def plan_cpu(matrix: Matrix, **choices: object):  # type: ignore[no-untyped-def]
    return Planner(matrix, parse_hardware("cpu:24GB", matrix.gpus)).plan(PlanRequest("smoke-gemma3", **choices))  # type: ignore[arg-type]


def envman(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], env=cli_env(home), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_the_default_is_the_newest_known_good_xinference_with_an_engine_it_can_drive(real_matrix: Matrix) -> None:
    plan = plan_cpu(real_matrix, frontend="xinference")
    assert plan.frontend is not None
    assert (plan.frontend.name, str(plan.frontend.version)) == ("xinference", "4.1.0")
    assert (plan.engine, str(plan.engine_version)) == ("xllamacpp", "2026.10.11549")
    assert plan.frontend.model_engine == "llama.cpp"
    assert plan.frontend.spec_version == 2
    assert dict(plan.frontend.env) == {}  # nothing from 1.6.0 on
    assert plan.to_json()["frontend"]["version"] == "4.1.0"


def test_the_seed_xinference_gets_xllamacpp_0_1_11_the_flag_and_llama_cpp_python(real_matrix: Matrix) -> None:
    plan = plan_cpu(real_matrix, frontend="xinference==1.4.0")
    assert plan.frontend is not None
    assert (plan.engine, str(plan.engine_version)) == ("xllamacpp", "0.1.11")  # 1.4.0 cannot drive 0.1.12+
    assert dict(plan.frontend.env) == {"USE_XLLAMACPP": "1"}
    assert plan.frontend.spec_version == 1
    assert "llama-cpp-python>=0.2.25,!=0.2.58" in plan.frontend.requirements  # it imports LlamaGrammar
    assert "torch==2.13.0+cpu" in plan.frontend.requirements
    assert any("USE_XLLAMACPP=1" in note for note in plan.notes)


def test_a_gemma3_plan_under_1_4_0_on_a_gpu_gets_a_vllm_that_runs_gemma3(real_matrix: Matrix) -> None:
    host = parse_hardware("A100-80GB", real_matrix.gpus)
    plan = Planner(real_matrix, host).plan(PlanRequest("gemma-3-27b-it", frontend="xinference==1.4.0"))
    assert plan.engine == "vllm"
    assert plan.engine_version >= Version("0.8.0")  # not the 0.7.2 Xinference 1.4.0's image bundled
    assert plan.frontend is not None
    assert plan.frontend.model_engine == "vLLM"


def test_1_4_0_with_xllamacpp_0_1_10_is_refused_with_xinferences_error_and_the_floor(real_matrix: Matrix) -> None:
    with pytest.raises(TargetError) as raised:
        plan_cpu(real_matrix, frontend="xinference==1.4.0", engine="xllamacpp", version="0.1.10")
    message = raised.value.message
    assert "unknown model architecture: 'gemma3'" in message
    assert "fixed in xllamacpp 0.1.11" in message
    assert raised.value.hint is not None
    assert "--force" in raised.value.hint
    forced = plan_cpu(real_matrix, frontend="xinference==1.4.0", engine="xllamacpp", version="0.1.10", force=True)
    assert str(forced.engine_version) == "0.1.10"
    assert any("Use xllamacpp>=0.1.11" in reason for reason in forced.forced)


def test_1_4_0_cannot_drive_a_current_xllamacpp(real_matrix: Matrix) -> None:
    with pytest.raises(TargetError) as raised:
        plan_cpu(real_matrix, frontend="xinference==1.4.0", engine="xllamacpp", version="2026.10.11549")
    assert "xinference 1.4.0 drives xllamacpp<0.1.12, not 2026.10.11549" in raised.value.message


def test_bad_frontends_are_usage_errors(real_matrix: Matrix, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown frontend 'nope'"):
        plan_cpu(real_matrix, frontend="nope")
    with pytest.raises(UsageError, match="is not a version"):
        plan_cpu(real_matrix, frontend="xinference==one")
    result = envman(tmp_path / "home", "plan", "smoke-gemma3", "--frontend", "nope")
    assert result.returncode == 2
    assert "unknown frontend 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_json_shows_the_frontend_its_command_and_the_flags_in_env(tmp_path: Path) -> None:
    result = envman(tmp_path / "home", "plan", "smoke-gemma3", "--frontend", "xinference==1.4.0", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["frontend"]["name"] == "xinference"
    assert data["frontend"]["version"] == "1.4.0"
    assert data["command"][:3] == ["xinference-local", "--host", "127.0.0.1"]
    assert data["env"]["USE_XLLAMACPP"] == "1"
    assert data["env"]["XINFERENCE_AUTH_ADVANCED"] == "0"


def test_up_refuses_an_api_key_it_cannot_pass_to_xinference(tmp_path: Path) -> None:
    result = envman(
        tmp_path / "home", "up", "smoke-gemma3", "--frontend", "xinference", "--api-key", "s3cret", "--dry-run"
    )
    assert result.returncode == 2
    assert "--api-key is not passed to Xinference" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr


def test_the_known_good_pairs_have_committed_current_locks(real_matrix: Matrix) -> None:
    pairs = frontend_known_good(real_matrix)
    assert {(c.frontend, c.engine, str(c.version)) for c in pairs} == {
        ("xinference==1.4.0", "xllamacpp", "0.1.11"),
        ("xinference==4.1.0", "xllamacpp", "2026.10.11549"),
    }
    for pair in pairs:
        request = request_for(real_matrix, pair, offline=True)
        path = lockfiles_dir(real_matrix) / request.filename
        text = path.read_text(encoding="utf-8")
        assert f"# inputs: {request.inputs_digest()}" in text
        assert f"\n{pair.frontend} \\" in text  # the frontend itself is pinned in the same environment
        assert "\ntorch==2.13.0+cpu \\" in text
    seed = request_for(real_matrix, Combination("xllamacpp", Version("0.1.11"), "cpu", "xinference==1.4.0"))
    assert seed.exclude_newer == "2025-03-22T00:00:00Z"  # as of Xinference 1.4.0's release
    assert seed.requirement_lines() == [
        "xinference==1.4.0",
        "xllamacpp==0.1.11",
        "llama-cpp-python>=0.2.25,!=0.2.58",
        "torch==2.13.0+cpu",
    ]
    assert "\nllama-cpp-python==0.3.8 \\" in (lockfiles_dir(real_matrix) / seed.filename).read_text(encoding="utf-8")


def test_every_drive_and_known_bad_pair_carries_evidence_from_an_artifact(real_matrix: Matrix) -> None:
    frontend = real_matrix.frontends["xinference"]
    for entry in (*frontend.drives, *frontend.known_bad, *frontend.specs):
        assert ".whl" in entry.evidence or ".tar.gz" in entry.evidence or "seed" in entry.evidence, entry


def test_lock_check_covers_the_frontend_pairs(tmp_path: Path) -> None:
    result = envman(tmp_path / "home", "lock", "--check", "--frontend", "xinference")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("2 lockfiles up to date in ")


def test_a_drive_naming_an_unknown_engine_is_reported_with_its_line(real_matrix_path: Path) -> None:
    from envman.errors import ConfigError
    from envman.matrix.load import parse_matrix

    text = real_matrix_path.read_text(encoding="utf-8")
    drive = 'engine = "vllm"\nengine_versions = ">=0.2.6"'
    broken = text.replace(drive, drive.replace('"vllm"', '"vllmm"'))
    assert broken != text
    with pytest.raises(ConfigError) as raised:
        parse_matrix(broken, real_matrix_path)
    assert any("frontends.xinference.drives[4].engine: unknown engine 'vllmm'" in p for p in raised.value.problems)
