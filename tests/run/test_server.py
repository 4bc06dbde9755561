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

from envman.engines.base import Launch
from envman.engines.launch import client_host, url_root
from envman.run.ports import is_free as port_is_free
from envman.run.server import LAUNCHERS, ServerCommand, StartupError, command_for, serve, start

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
    assert server.spawned.process.returncode == 0  # SIGINT was enough: it stopped cleanly
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
    server.stop_timeouts = (0.5, 0.5)
    code = server.stop()
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
    launch = Launch(argv, {"LLAMA_X": "1"}, "/health", url_root=url_root("localhost", 8123), served_model_name="m")
    command = command_for(launch, python, "my-server")
    assert command.argv == (str(python), "-m", "envman_xllamacpp_server", "--port", "8123")
    assert command.env["PYTHONPATH"] == str(LAUNCHERS)
    assert (LAUNCHERS / "envman_xllamacpp_server.py").is_file()
    assert command.env["VIRTUAL_ENV"] == str(tmp_path / "env")
    assert command.env["PATH"].split(os.pathsep)[0] == str(python.parent)
    assert command.env["LLAMA_X"] == "1"
    assert command.env["ENVMAN_SERVER"] == "my-server"
    assert command.ready_url == "http://127.0.0.1:8123/health"
    assert command.base_url == "http://127.0.0.1:8123/v1"
    script = command_for(Launch(("vllm", "serve", "m"), {}, "/health", url_root=url_root("10.0.0.2", 8000)), python)
    assert script.argv[0] == str(python.parent / "vllm")
    assert script.url_root == "http://10.0.0.2:8000"


def test_client_host() -> None:
    assert url_root("localhost", 8000) == "http://127.0.0.1:8000"
    assert url_root("0.0.0.0", 9) == "http://127.0.0.1:9"
    assert client_host("::1") == "[::1]"


# -- reliability: no engine outlives envman, and "ready" means ours --------------------------


def _driver(tmp_path: Path, command: ServerCommand) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER_MAIN, command.url_root, str(tmp_path / "server.log"), *command.argv],
        stdout=subprocess.PIPE,
        text=True,
        env={**command.env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


# the CLI's handlers: SIGTERM and SIGHUP unwind like Ctrl-C and exit 128 + N
DRIVER_MAIN = """
import os, signal, sys, time
from pathlib import Path
from envman.errors import Terminated
from envman.run.server import ServerCommand, serve
def stop(signum, frame):
    raise Terminated(signum)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGHUP, stop)
command = ServerCommand(tuple(sys.argv[3:]), dict(os.environ), sys.argv[1], "/health")
try:
    with serve(command, Path(sys.argv[2]), timeout=30) as server:
        print(server.pid, flush=True)
        time.sleep(600)
except Terminated as t:
    sys.exit(128 + t.signum)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_stop_signal_to_envman_stops_the_engine(
    tmp_path: Path, fake_command: MakeCommand, sig: signal.Signals, code: int
) -> None:
    pidfile = tmp_path / "worker.pid"
    command = fake_command(FAKE_GRANDCHILD_PIDFILE=str(pidfile))
    driver = _driver(tmp_path, command)
    assert driver.stdout is not None
    server_pid = int(driver.stdout.readline())
    worker = int(pidfile.read_text())
    driver.send_signal(sig)
    assert driver.wait(timeout=30) == code
    assert wait_gone(server_pid) == []
    assert not alive(worker)
    assert port_is_free(port_of(command.url_root))


def test_sigkill_of_envman_still_stops_the_engine_within_seconds(tmp_path: Path, fake_command: MakeCommand) -> None:
    pidfile = tmp_path / "worker.pid"
    command = fake_command(FAKE_GRANDCHILD_PIDFILE=str(pidfile))
    driver = _driver(tmp_path, command)
    assert driver.stdout is not None
    server_pid = int(driver.stdout.readline())
    worker = int(pidfile.read_text())
    driver.kill()  # no handler runs: only the guardian's pipe notices
    driver.wait(timeout=10)
    assert wait_gone(server_pid, timeout=15) == []
    assert not alive(worker)
    assert port_is_free(port_of(command.url_root))
    assert "envman is gone" in (tmp_path / "server.log").read_text()


def test_a_port_taken_while_the_engine_starts_is_not_ready(tmp_path: Path, fake_command: MakeCommand) -> None:
    import http.server
    import threading

    command = fake_command(FAKE_BIND_AFTER="3")
    port = port_of(command.url_root)

    class Other(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    def intrude() -> None:  # binds the port while the engine is still loading
        time.sleep(0.5)
        intruder = http.server.HTTPServer(("127.0.0.1", port), Other)
        threading.Thread(target=intruder.serve_forever, daemon=True).start()

    threading.Thread(target=intrude, daemon=True).start()
    with pytest.raises(StartupError) as caught, serve(command, tmp_path / "server.log", timeout=30):
        pytest.fail("another process's answer must not count as ready")
    assert "not from this engine" in caught.value.reason
    assert f"pid {os.getpid()}" in caught.value.reason  # the intruder is named


def test_detached_server_outlives_its_starter_and_stops_with_its_group(
    tmp_path: Path, fake_command: MakeCommand
) -> None:
    command = fake_command()
    server = start(command, tmp_path / "server.log")
    server.wait_ready(30)
    server.detach()
    time.sleep(0.5)
    assert alive(server.pid)  # released: the guardian no longer watches envman
    server.stop_timeouts = (5.0, 2.0)
    server.stop()
    assert wait_gone(server.pid) == []
