"""Real engines, real weights (synthesized), the real OpenAI client: `envman smoke` end to end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest

from envman.build.environments import Environment
from envman.engines.launch import Bindings, launch
from envman.hardware.spec import parse_hardware
from envman.matrix.schema import Format, Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.run.ports import free_port
from envman.run.ports import is_free as port_is_free
from envman.run.process import members
from envman.run.server import ProcessServer as Server
from envman.run.server import command_for, serve
from tests.helpers import share_envs

from .conftest import cli_env, wait_gone

pytestmark = [pytest.mark.engine, pytest.mark.network]


def envman(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args],
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=timeout,
        check=False,
    )


def current_xllamacpp(matrix: Matrix) -> str:
    return str(matrix.families["gemma3"].engines["xllamacpp"].known_good[-1])


def test_xllamacpp_current_release_passes(engines_home: Path, real_matrix: Matrix) -> None:
    result = envman(engines_home, "smoke", "smoke-gemma3", "--engine", "xllamacpp", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["passed"] is True
    assert (data["engine"], data["engine_version"], data["variant"]) == (
        "xllamacpp",
        current_xllamacpp(real_matrix),
        "cpu",
    )
    assert data["completion_tokens"] >= 1
    assert data["diagnosis"] is None
    evidence = json.loads(Path(data["evidence"]).read_text())
    assert evidence["result"] == "passed"
    assert evidence["answer"]["completion_tokens"] == data["completion_tokens"]
    assert len(evidence["answer"]["token_ids"]) == data["completion_tokens"]  # llama.cpp reports the ids
    assert evidence["lock"]["digest"].startswith("sha256:")


def test_below_the_floor_is_refused(engines_home: Path) -> None:
    result = envman(engines_home, "smoke", "smoke-gemma3", "--engine", "xllamacpp", "--version", "0.1.10")
    assert result.returncode == 1
    assert "xllamacpp 0.1.10 cannot run gemma3: the architecture was added in xllamacpp 0.1.11" in result.stderr
    assert "--force" in result.stderr
    assert result.stdout == ""


def test_forced_below_the_floor_fails_with_a_diagnosis(engines_home: Path) -> None:
    result = envman(
        engines_home, "smoke", "smoke-gemma3", "--engine", "xllamacpp", "--version", "0.1.10", "--force", "--json"
    )
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["passed"] is False
    assert data["engine_version"] == "0.1.10"
    assert data["error"] == "the server exited during start-up (exit status 1)"
    assert "unknown model architecture" not in data["diagnosis"]  # the cause, not the raw line
    assert "'gemma3'" in data["diagnosis"]
    assert "xllamacpp>=0.1.11" in data["diagnosis"]
    evidence = json.loads(Path(data["evidence"]).read_text())
    assert evidence["result"] == "failed"
    assert "unknown model architecture: 'gemma3'" in evidence["log_tail"]


def _server_of(parent: int) -> tuple[int, str] | None:
    """The launcher process started by ``parent`` (pid and command line), if it runs yet."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and "envman_xllamacpp_server" in cmdline:
            return int(entry.name), " ".join(cmdline)
    return None


def test_sigint_to_envman_smoke_stops_the_server(engines_home: Path) -> None:
    envman(engines_home, "build", "smoke-gemma3", "--engine", "xllamacpp")  # so the server starts at once
    smoke = subprocess.Popen(
        [sys.executable, "-m", "envman", "smoke", "smoke-gemma3", "--engine", "xllamacpp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(engines_home),
    )
    deadline = time.monotonic() + 120
    found = None
    while found is None and time.monotonic() < deadline and smoke.poll() is None:
        found = _server_of(smoke.pid)
        if found is None:
            time.sleep(0.005)
    assert found is not None, "the server never started"
    pid, cmdline = found
    # Hold the server where it is (starting) so the interrupt surely lands while it runs.
    os.killpg(pid, signal.SIGSTOP)
    try:
        smoke.send_signal(signal.SIGINT)
        time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already: the checks below say why
            os.killpg(pid, signal.SIGCONT)
    _, err = smoke.communicate(timeout=60)
    assert smoke.returncode == 130, err
    assert wait_gone(pid) == []
    assert members(pid) == []
    port = int(cmdline.split("--port ", 1)[1].split()[0])
    assert port_is_free(port)


def _environment(home: Path, model: str, *version: str) -> Environment:
    result = envman(home, "build", model, "--engine", "xllamacpp", *version, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return Environment(
        id=data["id"],
        path=Path(data["path"]),
        engine="xllamacpp",
        engine_version=data["engine_version"],
        variant=data["variant"],
        python=data["python_version"],
        fingerprint=data["fingerprint"],
        lockfile=data["lockfile"],
        lock_digest=data["lock_digest"],
        created=data["created"],
        last_used=0.0,
    )


@contextmanager
def _server(
    home: Path,
    matrix: Matrix,
    model: str,
    version: str | None,
    api_key: str | None,
    monkeypatch: pytest.MonkeyPatch,
    extra_args: tuple[str, ...] = (),
) -> Iterator[Server]:
    from envman.synth import synthesize

    monkeypatch.setenv("ENVMAN_HOME", str(home))
    env = _environment(home, model, *(("--version", version, "--force") if version else ()))
    planner = Planner(matrix, parse_hardware("cpu", matrix.gpus))
    plan = planner.plan(PlanRequest(model=model, engine="xllamacpp", version=version, force=bool(version)))
    gguf = synthesize(plan.model, Format.GGUF)
    bound = launch(plan, Bindings(weights=str(gguf), port=free_port(), api_key=api_key, extra_args=extra_args))
    command = command_for(bound, env.python_bin)
    with serve(command, home / "logs" / f"{model}-{version}.log", timeout=120) as server:
        yield server


def _talk(server: Server, model: str, api_key: str = "none") -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0, timeout=60)
    assert model in [m.id for m in client.models.list()]
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}], temperature=0, max_tokens=8
    )
    assert completion.usage is not None
    assert completion.usage.completion_tokens >= 1
    assert completion.choices[0].message.role == "assistant"
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}], temperature=0, max_tokens=4, stream=True
    )
    deltas = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
    assert deltas


def test_openai_client_talks_to_the_current_xllamacpp(
    engines_home: Path, real_matrix: Matrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _server(engines_home, real_matrix, "smoke-gemma3", None, None, monkeypatch) as server:
        _talk(server, "smoke-gemma3")


def test_the_api_key_is_enforced(engines_home: Path, real_matrix: Matrix, monkeypatch: pytest.MonkeyPatch) -> None:
    with _server(engines_home, real_matrix, "smoke-gemma3", None, "sekret", monkeypatch) as server:
        _talk(server, "smoke-gemma3", api_key="sekret")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0).models.list()


@pytest.mark.parametrize(("extra", "threads"), [((), 1), (("--threads", "2"), 2)])
def test_a_small_model_runs_on_one_thread_unless_told(
    engines_home: Path, real_matrix: Matrix, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...], threads: int
) -> None:
    """llama.cpp's spinning barriers make every core slower than one on a busy host (bench/xllamacpp_threads.py)."""
    with _server(engines_home, real_matrix, "smoke-gemma3", None, None, monkeypatch, extra) as server:
        _talk(server, "smoke-gemma3")
        log = server.log()
    assert f"n_threads = {threads}" in log, log[-3000:]


def test_openai_client_talks_to_xllamacpp_0_1(
    engines_home: Path, real_matrix: Matrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    """xllamacpp < 0.2.7 serves no HTTP: the launcher's own server fronts its Python API."""
    with _server(engines_home, real_matrix, "smoke-llama", "0.1.11", "sekret", monkeypatch) as server:
        _talk(server, "smoke-llama", api_key="sekret")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0).models.list()


def test_vllm_cpu_smoke(tmp_path: Path, shared_envs: Path, vllm_cpu: dict[str, object]) -> None:
    """The one vLLM smoke: the session's ~3 GB environment, an eager start (the variant's smoke_args)."""
    vllm_home = share_envs(tmp_path / "home", shared_envs)
    result = envman(vllm_home, "smoke", "smoke-gemma3", "--engine", "vllm", "--json", timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert (data["passed"], data["engine"], data["variant"]) == (True, "vllm", "cpu")
    assert data["completion_tokens"] >= 1
    evidence = json.loads(Path(data["evidence"]).read_text())
    assert evidence["server"]["env"]["VLLM_CPU_KVCACHE_SPACE"]
    assert "--gpu-memory-utilization" in evidence["server"]["command"]
    assert evidence["server"]["command"][-1] == "--enforce-eager"  # the variant's smoke_args, recorded

    # parity: the same random weights, as HF safetensors in vLLM and as GGUF in llama.cpp,
    # give the same greedy answer to the same prompt
    other = envman(vllm_home, "smoke", "smoke-gemma3", "--engine", "xllamacpp", "--json", timeout=600)
    assert other.returncode == 0, other.stderr[-3000:]
    llama_cpp = json.loads(other.stdout)
    assert llama_cpp["completion_tokens"] == data["completion_tokens"]
    assert llama_cpp["answer"]["text"] == data["answer"]["text"]
