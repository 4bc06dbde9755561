"""The Xinference image for real: built by a daemon from the committed Dockerfile's render, run with
its own CMD (envman's launcher starts Xinference, registers the smoke GGUF, launches it with
llama.cpp), and asked a chat completion by a real OpenAI client through Xinference's endpoint.

The PyTorch CPU index the Dockerfile names is out of reach here; the build takes the same
``torch==2.13.0+cpu`` wheel (the lock's hash checks it) from the local wheel folder, served over
HTTP on the host's loopback to a build on the host network: a stand-in for that index, as
envman-test/python is for the base image. Everything else comes from PyPI inside the build.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI
from packaging.version import Version

from envman.docker import container, image, serve
from envman.docker import dockerfile as df
from envman.engines.base import Launch
from envman.matrix.combinations import Combination
from envman.matrix.schema import Format, Matrix
from envman.report import RecordingReporter
from envman.run.ports import free_port
from envman.run.server import Server, wait_ready
from tests.docker_images.conftest import CA_BUNDLE, REPO
from tests.helpers import LOCAL_WHEELS

NEWEST = Combination("xllamacpp", Version("2026.10.11549"), "cpu", "xinference==4.1.0")
TAG = "envman-test/xinference:4.1.0-xllamacpp-2026.10.11549-cpu"
WHEEL_INDEX_PORT = 38761

pytestmark = [pytest.mark.network, pytest.mark.engine, pytest.mark.slow]


@pytest.fixture
def wheel_index() -> Iterator[str]:
    """The local wheel folder as a find-links page on 127.0.0.1 (http.server's directory listing)."""
    if not LOCAL_WHEELS.is_dir():
        pytest.fail(f"{LOCAL_WHEELS} (the CPU torch wheel) is missing: the PyTorch CPU index is out of reach here")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(LOCAL_WHEELS))
    try:  # the URL is in the Dockerfile's install step: a fixed one lets the daemon reuse that layer
        server = http.server.ThreadingHTTPServer(("127.0.0.1", WHEEL_INDEX_PORT), handler)
    except OSError:  # taken: any port (the build then installs afresh)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_xinference_image_builds_and_serves_the_smoke_gguf_through_its_openai_endpoint(
    docker_daemon: str, real_matrix: Matrix, wheel_index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import docker

    from envman.synth import synthesize

    public = df.public_matrix(real_matrix.path)
    target = df.target_for(public, NEWEST, lock_dir=REPO / "lockfiles")
    committed = (REPO / "dockerfiles" / target.filename).read_text(encoding="utf-8")
    assert df.render(target) == committed
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in committed  # as the CPU engine images
    local = dataclasses.replace(target, sources=("--find-links", wheel_index))
    text = df.render(local)
    assert text.replace(f"--find-links {wheel_index}", "--extra-index-url https://download.pytorch.org/whl/cpu") == (
        committed
    )  # the stand-in index is the only difference

    reporter = RecordingReporter()
    started = time.monotonic()
    image.build_context_image(
        text, local, REPO / "lockfiles", tag=TAG, base_image=docker_daemon, extra_ca=CA_BUNDLE,
        network_mode="host", reporter=reporter,
    )  # fmt: skip
    build_seconds = time.monotonic() - started
    config = docker.from_env().images.get(TAG).attrs["Config"]
    assert config["Labels"]["io.envman.frontend"] == "xinference==4.1.0"
    assert config["Labels"]["io.envman.lock-digest"] == target.lock.digest
    assert config["User"] == "10001"
    assert config["Env"].count("XINFERENCE_AUTH_ADVANCED=0") == 1

    monkeypatch.setenv("ENVMAN_HOME", str(tmp_path / "home"))
    weights = synthesize(public.models["smoke-gemma3"], Format.GGUF)
    own_cmd = Launch((), {}, target.ready_path, served_model_name="smoke-gemma3")  # the image's own CMD
    owned: list[Server] = []
    name = "envman-test-xinference"
    try:
        server = serve.start(
            TAG, own_cmd, name=name, host="127.0.0.1", port=free_port(),
            mounts={str(weights): f"/models/{weights.name}"}, gpus=False, owned=owned,
        )  # fmt: skip
        ready = wait_ready(server, 900)  # GET /v1/models/smoke-gemma3: 200 only once the model is launched
        assert container.wait_healthy(server.container, 120) >= 0  # Docker's HEALTHCHECK agrees
        client = OpenAI(base_url=server.url_root + "/v1", api_key="unused", timeout=300)
        listed = [m.id for m in client.models.list().data]
        assert listed == ["smoke-gemma3"]
        answer = client.chat.completions.create(
            model="smoke-gemma3", messages=[{"role": "user", "content": "Say hi"}], max_tokens=4, temperature=0
        )
        assert answer.usage is not None
        assert answer.usage.completion_tokens >= 1
        assert answer.choices[0].message.content is not None
        log = server.log()
        assert "envman_xinference_serve: registered smoke-gemma3" in log
        assert "envman_xinference_serve: launched smoke-gemma3" in log
    finally:
        for running in owned:
            running.stop()
    assert container.find(name) is None
    print(f"xinference image: build {build_seconds:.0f} s, ready after {ready:.0f} s")  # shown with -s / -rP
