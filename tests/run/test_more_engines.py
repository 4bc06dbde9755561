"""transformers, mlx-lm and llama-cpp-python: real engines on synthesized smoke models, on this CPU.

Each environment is built once per session (engines_home); llama-cpp-python compiles llama.cpp
from its sdist on the first build of a machine (minutes), and uv's cache serves the wheel later.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from envman.engines.launch import Bindings, launch
from envman.hardware.spec import parse_hardware
from envman.matrix.schema import Format, Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.run.ports import free_port
from envman.run.process import members
from envman.run.server import command_for, serve

from .conftest import cli_env

pytestmark = pytest.mark.network


def envman(home: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args],
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=timeout,
        check=False,
    )


def smoke(home: Path, engine: str, version: str) -> dict[str, object]:
    result = envman(home, "smoke", "smoke-gemma3", "--engine", engine, "--version", version, "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    data: dict[str, object] = json.loads(result.stdout)
    assert (data["passed"], data["engine"], data["engine_version"], data["variant"]) == (True, engine, version, "cpu")
    return data


def test_transformers_floor_and_newest_give_the_same_greedy_answer(engines_home: Path, real_matrix: Matrix) -> None:
    """4.50.0 (gemma3's floor) has no `transformers serve`: envman's launcher serves it; 5.24.0 runs
    `transformers serve`. The same weights and prompt give the same greedy tokens."""
    floor, newest = (str(v) for v in real_matrix.families["gemma3"].engines["transformers"].known_good)
    old, new = smoke(engines_home, "transformers", floor), smoke(engines_home, "transformers", newest)
    old_log, new_log = Path(str(old["log"])).read_text(), Path(str(new["log"])).read_text()
    assert f"envman_transformers_server: transformers {floor}: loading" in old_log
    assert f"envman_transformers_server: transformers {newest}: running" in new_log
    assert "-m transformers.cli.transformers serve smoke-gemma3" in new_log
    assert "Uvicorn running on" in new_log  # transformers serve itself answered
    old_answer, new_answer = old["answer"], new["answer"]
    assert isinstance(old_answer, dict)
    assert isinstance(new_answer, dict)
    assert old_answer["completion_tokens"] == new_answer["completion_tokens"] == 8
    assert old_answer["text"] == new_answer["text"]
    assert old_answer["text"].strip()
    assert old_answer["model"] == new_answer["model"] == "smoke-gemma3"


def test_mlx_lm_cpu_serves_the_smoke_model_under_its_served_name(engines_home: Path, real_matrix: Matrix) -> None:
    version = str(real_matrix.engines["mlx-lm"].known_good[-1])
    data = smoke(engines_home, "mlx-lm", version)
    answer = data["answer"]
    assert isinstance(answer, dict)
    assert answer["completion_tokens"] == 8
    assert answer["model"] == "smoke-gemma3"  # not downloaded from the hub under that name
    assert answer["text"].strip()


def test_mlx_lm_that_cannot_load_the_model_exits_at_once_with_its_error(engines_home: Path) -> None:
    """mlx-lm reads gpt-oss experts only as MXFP4: loading the bf16 smoke model kills mlx_lm.server's
    generation thread, and its /health says 503 for ever. envman's launcher exits instead."""
    refused = envman(engines_home, "smoke", "smoke-gpt_oss", "--engine", "mlx-lm", "--json")
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert "known bad: envman verify: smoke-gpt_oss failed" in refused.stderr  # matrix.toml's record of it
    assert "(error: ValueError: Received 6 parameters not in model:)" in refused.stderr
    result = envman(
        engines_home, "smoke", "smoke-gpt_oss", "--engine", "mlx-lm", "--force", "--json", "--timeout", "600"
    )
    assert result.returncode == 1, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["passed"] is False
    assert data["error"] == "the server exited during start-up (exit status 1)"
    assert data["timings"]["total_s"] < 120  # not the 600 s timeout
    log = Path(str(data["log"])).read_text()
    assert "ValueError: Received 6 parameters not in model" in log
    assert "envman_mlx_lm_server: the generation thread died (its traceback is above); exiting" in log


@pytest.mark.parametrize("engine", ["transformers", "mlx-lm"])
def test_engines_that_cannot_check_a_key_refuse_one(engines_home: Path, engine: str) -> None:
    result = envman(engines_home, "up", "smoke-gemma3", "--engine", engine, "--api-key", "sekret", "--dry-run")
    assert result.returncode == 2, result.stderr
    assert "cannot check an API key" in result.stderr
    assert "Traceback" not in result.stderr
    assert "reverse proxy" in result.stderr
    assert "sekret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def _get(url: str, key: str | None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_llama_cpp_python_checks_the_key_it_gets_from_the_environment(
    engines_home: Path, real_matrix: Matrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envman.synth import synthesize

    version = str(real_matrix.engines["llama-cpp-python"].known_good[-1])
    built = envman(engines_home, "build", "smoke-gemma3", "--engine", "llama-cpp-python", "--json")
    assert built.returncode == 0, built.stderr[-3000:]
    python = Path(json.loads(built.stdout)["python"])
    monkeypatch.setenv("ENVMAN_HOME", str(engines_home))
    monkeypatch.setenv("API_KEY", "from-the-shell")  # must not reach the server
    planner = Planner(real_matrix, parse_hardware("cpu", real_matrix.gpus))
    plan = planner.plan(PlanRequest(model="smoke-gemma3", engine="llama-cpp-python", version=version))
    gguf = synthesize(plan.model, Format.GGUF)
    bound = launch(plan, Bindings(weights=str(gguf), port=free_port(), api_key="sekret"))
    assert "sekret" not in bound.argv
    command = command_for(bound, python)
    with serve(command, engines_home / "logs" / "llama-cpp-python-key.log", timeout=300) as server:
        for member in members(server.pid):  # the guardian, the launcher and the server: no key on any argv
            assert "sekret" not in " ".join(member.cmdline())
        models = f"{server.base_url}/models"
        assert _get(models, None) == 401
        assert _get(models, "wrong") == 401
        assert _get(models, "from-the-shell") == 401
        assert _get(models, "sekret") == 200
        body = json.dumps(
            {"model": "smoke-gemma3", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4}
        ).encode()
        chat = urllib.request.Request(
            f"{server.base_url}/chat/completions",
            data=body,
            headers={"Authorization": "Bearer sekret", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(chat, timeout=120) as response:
            answer = json.loads(response.read())
        assert answer["usage"]["completion_tokens"] >= 1
        assert answer["model"] == "smoke-gemma3"


def test_llama_cpp_python_gemma3_floor_and_newest_smoke(engines_home: Path, real_matrix: Matrix) -> None:
    for version in real_matrix.families["gemma3"].engines["llama-cpp-python"].known_good:
        data = smoke(engines_home, "llama-cpp-python", str(version))
        answer = data["answer"]
        assert isinstance(answer, dict)
        assert answer["completion_tokens"] >= 1
