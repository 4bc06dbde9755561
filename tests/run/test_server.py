"""The server lifecycle against a fake engine: readiness, fail-fast, group stop, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from envman.run.server import (
    LAUNCHERS,
    StartupError,
    command_for,
    port_is_free,
    serve,
    shutdown,
    start,
    url_root,
)

from .conftest import MakeCommand, alive, wait_gone


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_ready_when_health_answers_200_and_stopped_after(tmp_path: Path, fake_command: MakeCommand) -> None:
    command = fake_command(FAKE_READY_AFTER="0.6")
    with serve(command, tmp_path / "server.log", timeout=30) as server:
        assert server.ready_seconds is not None
        assert server.ready_seconds >= 0.6
        with urllib.request.urlopen(server.base_url + "/models", timeout=5) as response:
            assert json.load(response)["data"][0]["id"] == "fake"
        pid = server.pid
    assert not alive(pid)
    assert server.process.returncode == 0  # SIGINT was enough: it stopped cleanly
    assert port_is_free(port_of(command.url_root))
    assert "fake engine interrupted" in (tmp_path / "server.log").read_text()


def test_exit_during_startup_fails_at_once_with_the_log_tail(tmp_path: Path, fake_command: MakeCommand) -> None:
    command = fake_command(FAKE_EXIT="3", FAKE_STDERR="error: unknown model architecture: 'gemma3'")
    started = time.monotonic()
    with pytest.raises(StartupError) as caught, serve(command, tmp_path / "server.log", timeout=120):
        pytest.fail("the server must not become ready")
    assert time.monotonic() - started < 10  # not the 120 s timeout
    error = caught.value
    assert error.reason == "the server exited during start-up (exit status 3)"
    assert error.returncode == 3
    assert "unknown model architecture: 'gemma3'" in error.message
    assert "unknown model architecture: 'gemma3'" in error.log
    assert error.hint == f"full log: {tmp_path / 'server.log'}"


def test_not_ready_in_time_is_stopped(tmp_path: Path, fake_command: MakeCommand) -> None:
    command = fake_command(FAKE_NEVER_READY="1")
    with pytest.raises(StartupError) as caught, serve(command, tmp_path / "server.log", timeout=1.5):
        pytest.fail("the server must not become ready")
    assert caught.value.reason.startswith("the server was not ready after 1.5s (")
    assert caught.value.returncode is None
    assert port_is_free(port_of(command.url_root))


def test_the_whole_group_is_stopped_grandchild_included(tmp_path: Path, fake_command: MakeCommand) -> None:
    pidfile = tmp_path / "grandchild.pid"
    command = fake_command(FAKE_GRANDCHILD_PIDFILE=str(pidfile))
    with serve(command, tmp_path / "server.log", timeout=30) as server:
        grandchild = int(pidfile.read_text())
        assert alive(grandchild)
        assert os.getpgid(grandchild) == server.pid  # the engine's own group, not ours
        assert os.getpgid(server.pid) != os.getpgid(0)
    assert wait_gone(server.pid) == []
    assert not alive(grandchild)


def test_a_server_ignoring_signals_is_killed(tmp_path: Path, fake_command: MakeCommand) -> None:
    command = fake_command(FAKE_IGNORE_SIGNALS="1")
    server = start(command, tmp_path / "server.log")
    server.wait_ready(30)
    started = time.monotonic()
    code = shutdown(server.process, interrupt_timeout=0.5, terminate_timeout=0.5)
    assert code == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert wait_gone(server.pid) == []


def test_keyboard_interrupt_stops_the_server_and_propagates(tmp_path: Path, fake_command: MakeCommand) -> None:
    command = fake_command()
    with pytest.raises(KeyboardInterrupt), serve(command, tmp_path / "server.log", timeout=30) as server:
        raise KeyboardInterrupt
    assert wait_gone(server.pid) == []
    assert port_is_free(port_of(command.url_root))


DRIVER = """
import sys, time
from pathlib import Path
from envman.run.server import ServerCommand, serve
command = ServerCommand(tuple(sys.argv[3:]), {}, sys.argv[1], "/health")
try:
    with serve(command, Path(sys.argv[2]), timeout=30) as server:
        print(server.pid, flush=True)
        time.sleep(600)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_sigint_to_the_parent_leaves_no_process_and_a_free_port(tmp_path: Path, fake_command: MakeCommand) -> None:
    command = fake_command()
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, command.url_root, str(tmp_path / "server.log"), *command.argv],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert driver.stdout is not None
    server_pid = int(driver.stdout.readline())
    assert alive(server_pid)
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=30) == 130
    assert wait_gone(server_pid) == []
    assert port_is_free(port_of(command.url_root))


def test_streamed_lines_reach_the_callback(tmp_path: Path, fake_command: MakeCommand) -> None:
    lines: list[str] = []
    with serve(fake_command(), tmp_path / "server.log", timeout=30, on_line=lines.append):
        pass
    assert "fake engine serving" in lines
    assert "fake engine interrupted" in lines


def test_command_for_a_planned_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = tmp_path / "env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    (python.parent / "vllm").touch()
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("VIRTUAL_ENV", "/envman/own/venv")
    argv = ("python", "-m", "envman_xllamacpp_server", "--port", "8123")
    command = command_for(argv, {"LLAMA_X": "1"}, python, "http://localhost:8123/v1", "/health")
    assert command.argv == (str(python), "-m", "envman_xllamacpp_server", "--port", "8123")
    assert command.env["PYTHONPATH"] == str(LAUNCHERS)
    assert (LAUNCHERS / "envman_xllamacpp_server.py").is_file()
    assert command.env["VIRTUAL_ENV"] == str(tmp_path / "env")
    assert command.env["PATH"].split(os.pathsep)[0] == str(python.parent)
    assert command.env["LLAMA_X"] == "1"
    assert command.ready_url == "http://127.0.0.1:8123/health"
    assert command.base_url == "http://127.0.0.1:8123/v1"
    script = command_for(("vllm", "serve", "m"), {}, python, "http://10.0.0.2:8000/v1", "/health")
    assert script.argv[0] == str(python.parent / "vllm")
    assert script.url_root == "http://10.0.0.2:8000"


def test_url_root() -> None:
    assert url_root("http://localhost:8000/v1") == "http://127.0.0.1:8000"
    assert url_root("http://0.0.0.0:9/v1") == "http://127.0.0.1:9"
