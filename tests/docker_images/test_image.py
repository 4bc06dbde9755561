"""Images built by a real daemon from the committed Dockerfiles, run, and asked a chat completion."""

from __future__ import annotations

import pytest
from packaging.version import Version

from envman.docker import container, image, serve
from envman.docker import dockerfile as df
from envman.engines.base import Launch
from envman.errors import PrerequisiteError
from envman.matrix.combinations import Combination
from envman.matrix.schema import Format, Matrix
from envman.report import RecordingReporter
from envman.run import http
from envman.run.ports import free_port
from envman.run.server import Server, wait_ready
from tests.docker_images.conftest import CA_BUNDLE, REPO, Cli

XLLAMACPP = Combination("xllamacpp", Version("2026.10.11549"), "cpu")


@pytest.mark.network
def test_xllamacpp_image_builds_serves_and_reuses_its_dependency_layer(docker_daemon: str, real_matrix: Matrix) -> None:
    import docker

    from envman.synth import synthesize

    reporter = RecordingReporter()
    built = image.build_image(
        real_matrix, "xllamacpp", "2026.10.11549", "cpu",
        base_image=docker_daemon, extra_ca=CA_BUNDLE, reporter=reporter,
    )  # fmt: skip
    assert not [m for kind, m in reporter.messages if kind == "warn"], (
        "built from a fresh render, not the committed file"
    )
    assert built.tag == "envman/xllamacpp:2026.10.11549-cpu"
    attrs = docker.from_env().images.get(built.tag).attrs
    config = attrs["Config"]
    lock = (REPO / "lockfiles" / "xllamacpp-2026.10.11549-cpu-py3.11.txt").read_text(encoding="utf-8")
    assert f"# digest: {config['Labels']['io.envman.lock-digest']}" in lock
    assert config["Labels"]["io.envman.engine"] == "xllamacpp"
    assert config["User"] == "10001"
    assert "8000/tcp" in config["ExposedPorts"]

    model = real_matrix.models["smoke-gemma3"]
    weights = synthesize(model, Format.GGUF)
    own_cmd = Launch((), {}, "/health", served_model_name="smoke-gemma3")  # the image's own CMD
    owned: list[Server] = []
    try:
        server = serve.start(
            built.tag, own_cmd, name="envman-test-own-cmd", host="127.0.0.1", port=free_port(),
            mounts={str(weights): f"/models/{weights.name}"}, gpus=False, owned=owned,
        )  # fmt: skip
        wait_ready(server, 300)
        assert container.wait_healthy(server.container, 300) >= 0  # Docker's HEALTHCHECK (python + urllib) passed
        answer = http.chat(server.url_root + "/v1", "smoke-gemma3")
        assert answer.completion_tokens >= 1
    finally:
        for running in owned:
            running.stop()
    assert container.find("envman-test-own-cmd") is None

    # Only a launch argument changes: every step up to and including the dependency layer is reused.
    target = df.target_for(real_matrix, XLLAMACPP, lock_dir=REPO / "lockfiles", extra_args=("--n-gpu-layers", "0"))
    rebuilt = image.build_context_image(
        df.render(target), target, REPO / "lockfiles",
        tag="envman-test/xllamacpp:flag-changed", base_image=docker_daemon, extra_ca=CA_BUNDLE,
    )  # fmt: skip
    sync_step = rebuilt.step_running("uv pip sync")
    assert sync_step == built.step_running("uv pip sync")
    layers = {n for n in range(1, sync_step + 1) if not rebuilt.step_texts[n].startswith(("ARG ", "FROM "))}
    assert layers <= set(rebuilt.cached_steps)
    assert rebuilt.step_images[sync_step] == built.step_images[sync_step]
    assert rebuilt.image_id != built.image_id
    cmd = docker.from_env().images.get(rebuilt.tag).attrs["Config"]["Cmd"]
    assert cmd[-2:] == ["--n-gpu-layers", "0"]
    docker.from_env().images.remove(rebuilt.tag)


def test_no_daemon_is_a_missing_prerequisite(cli: Cli, tmp_path: object) -> None:
    dead = {"DOCKER_HOST": "unix:///nonexistent/envman-test-docker.sock"}
    result = cli("ci", "smoke", "--engine", "xllamacpp", "--version", "2026.10.11549", "--variant", "cpu", env=dead)
    assert result.returncode == 3, result.stderr
    stderr = " ".join(result.stderr.split())
    assert "error: no Docker daemon answers" in stderr
    assert "hint: start a daemon" in stderr
    assert "scripts/ci-docker-setup" in stderr


def test_no_daemon_raises_prerequisite_error(monkeypatch: pytest.MonkeyPatch, real_matrix: Matrix) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/envman-test-docker.sock")
    with pytest.raises(PrerequisiteError) as raised:
        image.build_image(real_matrix, "xllamacpp", "2026.10.11549", "cpu")
    assert raised.value.exit_code == 3
