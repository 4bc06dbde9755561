"""verify --versions: the releases a sweep covers, its state, and a real sweep that resumes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from envman.errors import UsageError
from envman.report import RecordingReporter
from envman.verify.cases import Case, Outcome
from envman.verify.sweep import State
from envman.verify.versions import parse
from tests.helpers import REPO, cli_env


def test_version_specs() -> None:
    assert Version("0.1.0") in parse("all")
    at_least = parse(">=0.1.10,<0.3")
    assert Version("0.1.10") in at_least
    assert Version("0.2.14") in at_least
    assert Version("0.3") not in at_least
    listed = parse("0.1.10, 0.1.11")
    assert [v in listed for v in (Version("0.1.10"), Version("0.1.11"), Version("0.1.12"))] == [True, True, False]
    with pytest.raises(UsageError) as bad:
        parse("newest")
    assert bad.value.message == "--versions 'newest' is not a version specifier"
    assert bad.value.hint is not None
    assert "'>=0.1.10,<0.3'" in bad.value.hint


def test_an_unreadable_state_is_moved_aside_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    reporter = RecordingReporter()
    state = State(path, reporter)
    case = Case("llama", "smoke-llama", "xllamacpp", Version("0.1.11"), "cpu")
    assert state.lookup(case, "l", "m", "x") is None
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith("state.json.unreadable-")]
    assert len(aside) == 1
    assert not path.exists()
    assert reporter.messages[0][0] == "warn"
    assert "could not be read" in reporter.messages[0][1]
    # a proven cell is found again only for the same lock, model and launch
    state.save(Outcome(case, "pass", 1.0, "ok", "/e.json", "abc", None, "l", "m", "x"))
    assert state.lookup(case, "l", "m", "x") is not None
    assert state.lookup(case, "other-lock", "m", "x") is None
    assert state.lookup(case, "l", "m", "other-launcher") is None
    assert json.loads(path.read_text())["cells"]["llama/xllamacpp/0.1.11/cpu"]["status"] == "pass"
    # a start that outlasted --timeout is this host's load: never proven, so the next sweep runs it again
    slow = Case("qwen3", "smoke-qwen3", "vllm", Version("0.32.0"), "cpu")
    detail = "the server was not ready after 900s (http://127.0.0.1:1/health did not answer 200)"
    state.save(Outcome(slow, "fail", 900.0, detail, "/e.json", None, None, "l", "m", "x"))
    assert state.lookup(slow, "l", "m", "x") is None


@pytest.mark.engine
@pytest.mark.network
def test_a_sweep_of_two_releases_resumes_without_running_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO / "matrix.toml", repo / "matrix.toml")
    shutil.copytree(REPO / "lockfiles", repo / "lockfiles")
    env = cli_env(home) | {"ENVMAN_MATRIX": str(repo / "matrix.toml")}
    args = [sys.executable, "-m", "envman", "verify", "--engine", "xllamacpp", "--family", "llama",
            "--versions", "0.1.0,2026.10.11549", "--report", str(tmp_path / "r.html")]  # fmt: skip

    first = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900, check=False)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "verify: [1/2] pass llama × xllamacpp 0.1.0 (cpu)" in first.stderr
    assert "verify: [2/2] pass llama × xllamacpp 2026.10.11549 (cpu)" in first.stderr
    assert "2 passed, 0 failed, 0 skipped (0 proven earlier;" in first.stdout
    records = sorted((home / "evidence" / "xllamacpp").rglob("*.json"))
    assert len(records) == 2

    second = subprocess.run([*args, "--record"], env=env, capture_output=True, text=True, timeout=900, check=False)

    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 passed, 0 failed, 0 skipped (2 proven earlier;" in second.stdout
    assert "verify: [1/2] pass llama × xllamacpp 0.1.0 (cpu) " in second.stderr
    assert "(proven earlier)" in second.stderr
    assert sorted((home / "evidence" / "xllamacpp").rglob("*.json")) == records  # nothing ran again
    assert "recorded 2 verified and 0 known-bad cells" in second.stdout
    assert len(list((repo / "evidence").glob("*.json"))) == 2
    assert "llama × xllamacpp 0.1.0" not in (repo / "matrix.toml").read_text()  # entries, not labels
    assert 'version = "0.1.0"' in (repo / "matrix.toml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--versions", ">=0.1.10"), "error: --versions '>=0.1.10' needs --engine"),
        (("--engine", "xllamacpp", "--versions", "newest"), "error: --versions 'newest' is not a version specifier"),
        (("--engine", "xllamacpp", "--versions", "0.1.x"), "error: --versions '0.1.x': Invalid version: '0.1.x'"),
    ],
)
def test_bad_versions_are_refused_with_a_hint(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "envman", "verify", *args], env=cli_env(tmp_path / "home"),
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == message
    assert "Traceback" not in result.stderr
