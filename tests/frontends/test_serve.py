"""Xinference over xllamacpp on this CPU host, for real: the seed's setting reproduced (1.4.0 +
xllamacpp 0.1.11 + USE_XLLAMACPP=1), the newest known-good release, the known-bad pair
(1.4.0 + 0.1.10) diagnosed with its floor, and stop signals that reach every process it spawned.

Each environment is built once per session (ENVMAN_TEST_XINFERENCE_HOME keeps them between
sessions); uv's cache makes a second environment of the same packages cheap. Xinference 1.4.0's
environment holds llama-cpp-python (built from its sdist once, then cached by uv).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from openai import OpenAI

from envman.run.process import marked, members
from tests.helpers import LOCAL_WHEELS, cli_env
from tests.run.conftest import wait_gone
from tests.up.test_up import free_port, port_free, wait_for_line

pytestmark = pytest.mark.network
SEED = "xinference==1.4.0"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("ENVMAN_TEST_XINFERENCE_HOME")
    return Path(kept) if kept else tmp_path_factory.mktemp("xinference-home")


def env_for(home: Path) -> dict[str, str]:
    env = cli_env(home) | {"CMAKE_ARGS": "-DGGML_NATIVE=OFF"}  # llama-cpp-python's wheel: portable, cached
    if LOCAL_WHEELS.is_dir():  # the PyTorch CPU index is out of reach here; its torch wheel is in this folder
        env |= {"ENVMAN_XINFERENCE_CPU_FIND_LINKS": str(LOCAL_WHEELS), "ENVMAN_XINFERENCE_CPU_EXTRA_INDEX_URLS": ""}
    return env


def envman(home: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], env=env_for(home), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def smoke(home: Path, *args: str) -> dict[str, object]:
    result = envman(home, "smoke", "smoke-gemma3", *args, "--json")
    assert result.stdout, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def evidence_of(data: dict[str, object]) -> dict[str, object]:
    record: dict[str, object] = json.loads(Path(str(data["evidence"])).read_text(encoding="utf-8"))
    return record


def test_the_seed_reproduced_xinference_1_4_0_xllamacpp_0_1_11_use_xllamacpp(home: Path) -> None:
    data = smoke(home, "--frontend", SEED)
    assert data["passed"] is True, data
    assert (data["engine"], data["engine_version"]) == ("xllamacpp", "0.1.11")
    assert isinstance(data["completion_tokens"], int)
    assert data["completion_tokens"] >= 1
    record = evidence_of(data)
    combination = record["combination"]
    assert isinstance(combination, dict)
    assert combination["frontend"]["version"] == "1.4.0"
    assert combination["frontend"]["env"] == {"USE_XLLAMACPP": "1"}
    server = record["server"]
    assert isinstance(server, dict)
    assert Path(server["command"][0]).name == "xinference-local"
    assert server["env"]["USE_XLLAMACPP"] == "1"


def test_the_newest_known_good_xinference_serves_smoke_gemma3(home: Path) -> None:
    data = smoke(home, "--frontend", "xinference")
    assert data["passed"] is True, data
    assert (data["engine"], data["engine_version"]) == ("xllamacpp", "2026.10.11549")
    combination = evidence_of(data)["combination"]
    assert isinstance(combination, dict)
    assert combination["frontend"]["version"] == "4.1.0"
    assert combination["frontend"]["env"] == {}


def test_1_4_0_with_xllamacpp_0_1_10_fails_and_the_diagnosis_names_the_floor(home: Path) -> None:
    data = smoke(home, "--frontend", SEED, "--engine", "xllamacpp", "--version", "0.1.10", "--force")
    assert data["passed"] is False
    assert "Failed to init server" in str(data["error"])  # Xinference's answer to the launch
    log = Path(str(data["log"])).read_text(encoding="utf-8")
    assert "unknown model architecture: 'gemma3'" in log  # llama.cpp's, in Xinference's log
    assert "use xllamacpp>=0.1.11" in str(data["diagnosis"])


def start_up(home: Path, port: int, *more: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "envman", "up", "smoke-gemma3", "--frontend", SEED, "--port", str(port), *more]
    return subprocess.Popen(
        argv, env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def ask(port: int) -> str:
    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="EMPTY")
    assert "smoke-gemma3" in [m.id for m in client.models.list().data]
    reply = client.chat.completions.create(
        model="smoke-gemma3", messages=[{"role": "user", "content": "Hello!"}], max_tokens=8, temperature=0
    )
    assert reply.usage is not None
    assert reply.usage.completion_tokens >= 1
    return reply.choices[0].message.content or ""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_up_under_xinference_and_a_stop_signal_ends_every_process_it_spawned(
    home: Path, sig: signal.Signals, code: int
) -> None:
    port = free_port()
    process = start_up(home, port)
    try:
        ready = wait_for_line(process, "ready", timeout=1500)
        assert f"http://127.0.0.1:{port}/v1" in ready
        assert "(model: smoke-gemma3)" in ready
        ask(port)
        leaders = marked("smoke-gemma3", home=home)["smoke-gemma3"]
        assert len(leaders) == 1
        spawned = [p.pid for p in members(leaders[0])]
        names = " ".join(" ".join(psutil.Process(pid).cmdline()) for pid in spawned)
        assert "xinference-local" in names
        assert len(spawned) >= 3, names  # the guardian, Xinference's supervisor and worker, the model process
    finally:
        process.send_signal(sig)
        process.wait(timeout=120)
    assert process.returncode == code
    assert wait_gone(leaders[0], timeout=30) == []
    assert not [pid for pid in spawned if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert port_free(port)


def test_detached_ps_and_down_know_the_xinference_server(home: Path) -> None:
    port = free_port()
    started = time.monotonic()
    result = envman(home, "up", "smoke-gemma3", "--frontend", SEED, "--port", str(port), "--detach", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["url"] == f"http://127.0.0.1:{port}/v1"
    assert data["command"][0] == "xinference-local"
    try:
        ask(port)
        listed = json.loads(envman(home, "ps", "--json").stdout)
        assert [(s["name"], s["status"]) for s in listed] == [("smoke-gemma3", "running")]
        pid = data["pid"]
        spawned = [p.pid for p in members(pid)]
    finally:
        down = envman(home, "down", "smoke-gemma3")
    assert down.returncode == 0, down.stderr
    assert wait_gone(pid, timeout=30) == []
    assert not [p for p in spawned if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert port_free(port)
    assert time.monotonic() - started < 900
