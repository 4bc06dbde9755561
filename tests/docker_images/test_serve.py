"""`envman smoke --docker` and `envman up --docker`: the xllamacpp CPU image, a real daemon."""

from __future__ import annotations

import json
import subprocess

import pytest
from openai import OpenAI

from tests.docker_images.conftest import CA_BUNDLE, Cli

pytestmark = [pytest.mark.engine, pytest.mark.network]

IMAGE_OPTIONS = ("--base-image", "envman-test/python:3.11-slim-bookworm", "--extra-ca", str(CA_BUNDLE))


def test_smoke_inside_the_container(docker_daemon: str, cli: Cli) -> None:
    result = cli("smoke", "smoke-gemma3", "--engine", "xllamacpp", "--docker", *IMAGE_OPTIONS, "--json", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["build"]["tag"] == "envman/xllamacpp:2026.10.11549-cpu"
    assert data["smoke"]["reply"]
    assert data["model"] == "smoke-gemma3"


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
