"""smoke() and its evidence, with the fake engine standing in for the environment's python."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from envman.build.environments import Environment
from envman.engines.launch import Bindings, launch
from envman.hardware.spec import parse_hardware
from envman.matrix.schema import Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan
from envman.report import RecordingReporter
from envman.run.http import RequestError, parse_answer
from envman.run.server import free_port
from envman.run.smoke import ProcessRunner, smoke

from .conftest import FAKE_ENGINE


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVMAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def plan(real_matrix: Matrix, tmp_path: Path) -> Plan:
    host = parse_hardware("cpu", real_matrix.gpus)
    return Planner(real_matrix, host).plan(PlanRequest(model="smoke-gemma3", engine="xllamacpp"))


def run_with(plan: Plan, env: Environment, weights: Path) -> ProcessRunner:
    """The plan bound to a free loopback port and ``weights``, run from ``env``."""
    return ProcessRunner(launch(plan, Bindings(weights=str(weights), port=free_port())), env, str(weights))


@pytest.fixture
def fake_env(tmp_path: Path) -> Environment:
    """An 'environment' whose python runs the fake engine (with the launcher's arguments)."""
    path = tmp_path / "env"
    (path / "bin").mkdir(parents=True)
    python = path / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_ENGINE} "$@"\n')
    python.chmod(0o755)
    return Environment(
        id="xllamacpp-2026.10.11549-cpu-0123456789ab",
        path=path,
        engine="xllamacpp",
        engine_version="2026.10.11549",
        variant="cpu",
        python="3.11",
        fingerprint="0123456789abcdef",
        lockfile="/locks/xllamacpp-2026.10.11549-cpu-py3.11.txt",
        lock_digest="sha256:feed",
        created="2026-11-22T00:00:00+00:00",
        last_used=0.0,
    )


def test_a_passing_smoke_leaves_evidence(
    home: Path, real_matrix: Matrix, plan: Plan, fake_env: Environment, tmp_path: Path
) -> None:
    result = smoke(
        real_matrix, plan, run_with(plan, fake_env, tmp_path / "m.gguf"), 30, RecordingReporter(), build_seconds=1.5
    )
    assert result.passed, result.error
    assert result.answer is not None
    assert result.answer.completion_tokens == 1
    assert result.answer.token_ids == (7,)
    assert result.evidence.parent == home / "evidence" / "xllamacpp" / "2026.10.11549-cpu"
    assert result.evidence.name.startswith("smoke-gemma3-")
    assert result.evidence.suffix == ".json"
    assert result.log_path == result.evidence.with_suffix(".log")
    data = json.loads(result.evidence.read_text())
    assert data["result"] == "passed"
    assert data["combination"] == {
        "model": "smoke-gemma3",
        "family": "gemma3",
        "engine": "xllamacpp",
        "engine_version": "2026.10.11549",
        "variant": "cpu",
        "package": "xllamacpp",
        "format": "gguf",
        "quantization": "F16",
        "dtype": None,
    }
    assert data["lock"] == {"digest": "sha256:feed", "lockfile": "/locks/xllamacpp-2026.10.11549-cpu-py3.11.txt"}
    assert data["environment"]["fingerprint"] == "0123456789abcdef"
    assert data["hardware"]["cpu"]["model"] == plan.host.cpu.model
    assert data["hardware"]["gpus"] == []
    assert data["timings"]["build_s"] == 1.5
    assert data["timings"]["start_to_ready_s"] > 0
    assert data["timings"]["request_s"] > 0
    assert data["answer"]["text"] == "hi"
    assert data["server"]["command"][0] == str(fake_env.python_bin)
    assert (data["diagnosis"], data["error"], data["log_tail"]) == (None, None, None)
    summary = result.to_json()
    assert (summary["passed"], summary["completion_tokens"], summary["diagnosis"]) == (True, 1, None)
    assert summary["evidence"] == str(result.evidence)


def test_an_engine_dying_at_startup_is_diagnosed(
    home: Path,
    real_matrix: Matrix,
    plan: Plan,
    fake_env: Environment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_EXIT", "1")
    monkeypatch.setenv(
        "FAKE_STDERR", "llama_model_load: error loading model architecture: unknown model architecture: 'gemma3'"
    )
    result = smoke(real_matrix, plan, run_with(plan, fake_env, tmp_path / "m.gguf"), 300, RecordingReporter())
    assert not result.passed
    assert result.seconds < 30
    assert result.error == "the server exited during start-up (exit status 1)"
    assert result.diagnosis is not None
    assert "'gemma3'" in result.diagnosis
    assert "xllamacpp>=0.1.11" in result.diagnosis
    assert "families.gemma3.engines.xllamacpp" in result.diagnosis
    data = json.loads(result.evidence.read_text())
    assert data["result"] == "failed"
    assert data["answer"] is None
    assert "unknown model architecture" in data["log_tail"]
    assert data["findings"][0]["first_version"] == "0.1.11"


def test_a_malformed_answer_fails(
    home: Path,
    real_matrix: Matrix,
    plan: Plan,
    fake_env: Environment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_BAD_ANSWER", "1")
    result = smoke(real_matrix, plan, run_with(plan, fake_env, tmp_path / "m.gguf"), 30, RecordingReporter())
    assert not result.passed
    assert result.error is not None
    assert result.error.startswith("the answer has no choices")
    assert json.loads(result.evidence.read_text())["result"] == "failed"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ([], "the answer is not a JSON object"),
        ({"choices": [{"index": 0}]}, "choices[0] has no message"),
        (
            {"choices": [{"message": {"content": ""}}], "usage": {"completion_tokens": 0}},
            'the answer reports no generated token (usage: {"completion_tokens": 0})',
        ),
    ],
)
def test_parse_answer_rejects(answer: object, error: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_answer(answer)
    assert caught.value.message.startswith(error)


def test_parse_answer_reads_vllm_token_ids() -> None:
    choice = {
        "message": {"role": "assistant", "content": "ab"},
        "finish_reason": "length",
        "logprobs": {"content": [{"token": "token_id:5"}, {"token": "token_id:9"}]},
    }
    answer = parse_answer({"choices": [choice], "usage": {"completion_tokens": 2, "prompt_tokens": 4}})
    assert (answer.text, answer.token_ids, answer.prompt_tokens) == ("ab", (5, 9), 4)


def test_a_vision_model_with_real_weights_is_also_shown_a_picture(
    home: Path, real_matrix: Matrix, fake_env: Environment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REQUESTS_LOG", str(requests))
    weights = tmp_path / "gemma-3-4b-it-Q4_K_M.gguf"
    weights.write_bytes(b"GGUF")
    host = parse_hardware("cpu", real_matrix.gpus)
    request = PlanRequest(model="gemma-3-4b-it", engine="xllamacpp")
    vision = Planner(real_matrix, host).plan(request)

    result = smoke(real_matrix, vision, run_with(vision, fake_env, weights), 30, RecordingReporter())

    assert result.passed, result.error
    asked = [json.loads(line) for line in requests.read_text().splitlines()]
    assert len(asked) == 3  # the text prompt, the image question's words alone, the words with the picture
    assert asked[0]["messages"][0]["content"] == "Say hello."
    assert asked[1]["messages"][0]["content"] == [{"type": "text", "text": "What colour is this picture?"}]
    parts = asked[2]["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What colour is this picture?"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    image = json.loads(result.evidence.read_text())["answer"]["image"]
    assert (image["completion_tokens"], image["prompt_tokens"], image["prompt_tokens_without_picture"]) == (1, 7, 3)

    monkeypatch.setenv("FAKE_DROPS_PICTURES", "1")  # an engine that answers without the picture fails
    dropped = smoke(real_matrix, vision, run_with(vision, fake_env, weights), 30, RecordingReporter())
    assert not dropped.passed
    assert dropped.error == (
        "the picture was left out: the image request's prompt has 3 tokens, the same words without it 3"
    )


def test_a_smoke_model_gets_no_picture(
    home: Path, real_matrix: Matrix, plan: Plan, fake_env: Environment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = tmp_path / "requests.jsonl"
    monkeypatch.setenv("FAKE_REQUESTS_LOG", str(requests))
    assert smoke(real_matrix, plan, run_with(plan, fake_env, tmp_path / "m.gguf"), 30, RecordingReporter()).passed
    assert len(requests.read_text().splitlines()) == 1
