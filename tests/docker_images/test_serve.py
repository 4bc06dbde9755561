"""`envman smoke --docker` and `envman up --docker`: the xllamacpp CPU image, a real daemon."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from openai import OpenAI

from tests.docker_images.conftest import CA_BUNDLE, Cli

pytestmark = pytest.mark.network

IMAGE_OPTIONS = ("--base-image", "envman-test/python:3.11-slim-bookworm", "--extra-ca", str(CA_BUNDLE))


def test_smoke_inside_the_container(docker_daemon: str, cli: Cli) -> None:
    result = cli("smoke", "smoke-gemma3", "--engine", "xllamacpp", "--docker", *IMAGE_OPTIONS, "--json", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    # the one documented shape: the same keys as a local `envman smoke --json`
    assert set(data) == {
        "passed", "model", "engine", "engine_version", "variant", "format", "completion_tokens", "seconds",
        "timings", "answer", "diagnosis", "error", "evidence", "log",
    }  # fmt: skip
    assert (data["passed"], data["model"], data["engine"]) == (True, "smoke-gemma3", "xllamacpp")
    assert data["completion_tokens"] >= 1
    evidence = json.loads(Path(data["evidence"]).read_text())
    assert evidence["result"] == "passed"
    assert evidence["environment"]["image"] == "envman/xllamacpp:2026.10.11549-cpu"
    assert evidence["lock"]["digest"].startswith("sha256:")
    assert "fake engine" not in Path(data["log"]).read_text()
    assert "serving smoke-gemma3" in Path(data["log"]).read_text()  # the container's log, kept
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "name=envman-smoke-"], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # the smoke container is gone


def test_sigkill_of_envman_up_docker_removes_its_container(docker_daemon: str, cli: Cli, tmp_path: Path) -> None:
    import os
    import signal
    import sys
    import time

    from tests.helpers import cli_env

    argv = [sys.executable, "-m", "envman", "up", "smoke-gemma3", "--engine", "xllamacpp", "--docker",
            *IMAGE_OPTIONS, "--port", "0", "--name", "dkill"]  # fmt: skip
    env = cli_env(tmp_path / "home")  # the same home as the `cli` fixture's: the image is reused
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("ready") or (not line and process.poll() is not None):
            break
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = subprocess.run(["docker", "ps", "-aq", "--filter", "name=envman-dkill"], capture_output=True, text=True)
        if not found.stdout.strip():
            break
        time.sleep(0.5)
    assert found.stdout.strip() == "", "the container outlived envman"


def test_up_docker_detached_serves_the_openai_api_until_down(docker_daemon: str, cli: Cli) -> None:
    started = cli("up", "smoke-gemma3", "--engine", "xllamacpp", "--docker", *IMAGE_OPTIONS, "--detach",
                  "--port", "0", "--name", "dk", "--json", timeout=900)  # fmt: skip
    assert started.returncode == 0, started.stderr[-3000:]
    info = json.loads(started.stdout)
    assert info["container"] == "envman-dk"
    try:
        inspect = subprocess.run(
            ["docker", "inspect", "envman-dk"], capture_output=True, text=True, check=True
        )  # fmt: skip
        bindings = json.loads(inspect.stdout)[0]["HostConfig"]["PortBindings"]["8000/tcp"]
        assert bindings[0]["HostIp"] == "127.0.0.1"  # published on loopback only
        mounts = json.loads(inspect.stdout)[0]["Mounts"]
        assert [(m["Destination"], m["RW"]) for m in mounts] == [("/models/smoke-gemma3-F16.gguf", False)]
        client = OpenAI(base_url=info["url"], api_key="EMPTY")
        assert [m.id for m in client.models.list().data] == ["smoke-gemma3"]
        reply = client.chat.completions.create(
            model="smoke-gemma3", messages=[{"role": "user", "content": "Hello!"}], max_tokens=4
        )
        assert reply.choices[0].message.content
        listed = json.loads(cli("ps", "--json").stdout)
        assert [(s["name"], s["status"]) for s in listed] == [("dk", "running")]
    finally:
        down = cli("down", "dk")
    assert down.returncode == 0, down.stderr
    assert "dk: stopped" in down.stdout
    gone = subprocess.run(["docker", "inspect", "envman-dk"], capture_output=True, check=False)
    assert gone.returncode != 0
