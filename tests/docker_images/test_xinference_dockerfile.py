"""``envman dockerfile --frontend xinference``: the image holds the frontend lock and starts Xinference
through envman's launcher; hostile values are refused or quoted. The real build is in
test_xinference_image.py."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from envman.docker import dockerfile as df
from envman.errors import ConfigError, UsageError
from envman.frontends import serve
from envman.matrix.combinations import Combination
from envman.matrix.schema import Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.synth.vocab import CHAT_TEMPLATE
from tests.docker_images.conftest import REPO, Cli
from tests.docker_images.test_dockerfile import _instructions

NEWEST = Combination("xllamacpp", Version("2026.10.11549"), "cpu", "xinference==4.1.0")
SEED = Combination("xllamacpp", Version("0.1.11"), "cpu", "xinference==1.4.0")
LOCKS = REPO / "lockfiles"


def _cmd(text: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith("CMD "))
    cmd: list[str] = json.loads(line[4:])
    return cmd


def _option(cmd: list[str], name: str) -> dict[str, object]:
    value: dict[str, object] = json.loads(cmd[cmd.index(name) + 1])
    return value


def test_the_newest_pair_renders_both_locked_and_xinference_started_by_the_launcher(real_matrix: Matrix) -> None:
    target = df.target_for(real_matrix, NEWEST, lock_dir=LOCKS)
    text = df.render(target)
    assert target.filename == "xinference-4.1.0-xllamacpp-2026.10.11549-cpu.Dockerfile"
    assert target.tag == "envman/xinference:4.1.0-xllamacpp-2026.10.11549-cpu"
    assert text == (REPO / "dockerfiles" / target.filename).read_text(encoding="utf-8")
    assert "COPY lockfiles/xinference-4.1.0-xllamacpp-2026.10.11549-cpu-py3.11.txt /opt/envman/lock.txt" in text
    # torch's +cpu build from the PyTorch CPU index, as the transformers and vLLM CPU images get it
    assert "--require-hashes --extra-index-url https://download.pytorch.org/whl/cpu" in text
    assert "assert v == sys.argv[2], (sys.argv[1], v, sys.argv[2])' xinference 4.1.0" in text
    assert "assert v == sys.argv[2], (sys.argv[1], v, sys.argv[2])' xllamacpp 2026.10.11549" in text
    assert "COPY envman/frontends/launchers/envman_xinference_serve.py /opt/envman/launchers/" in text
    assert "apt-get install -y --no-install-recommends ca-certificates libgomp1 \\" in text
    assert 'XINFERENCE_HOME="/home/envman/.xinference"' in text
    assert 'XINFERENCE_AUTH_ADVANCED="0"' in text
    assert "USE_XLLAMACPP" not in text  # 1.6.0 dropped the flag
    assert "u.urlopen('http://127.0.0.1:8000/v1/models/smoke-gemma3', timeout=4)" in text
    assert 'io.envman.frontend="xinference==4.1.0"' in text
    assert 'org.opencontainers.image.url="https://github.com/xorbitsai/inference"' in text

    cmd = _cmd(text)
    assert cmd[:5] == ["python", "-m", "envman_xinference_serve", "--port", "8000"]
    assert cmd[cmd.index("--") :] == ["--", "xinference-local", "--host", "0.0.0.0", "--port", "8000"]
    registration = _option(cmd, "--register")
    assert registration["version"] == 2
    assert registration["model_name"] == "smoke-gemma3"
    assert registration["chat_template"] == CHAT_TEMPLATE
    assert registration["model_specs"] == [
        {"model_format": "ggufv2", "model_size_in_billions": "0_1", "model_id": None, "model_uri": "/models",
         "model_file_name_template": "smoke-gemma3-F16.gguf", "quantization": "F16"}
    ]  # fmt: skip
    launch = _option(cmd, "--launch")
    assert launch == {
        "model_uid": "smoke-gemma3", "model_name": "smoke-gemma3", "model_type": "LLM", "model_engine": "llama.cpp",
        "model_format": "ggufv2", "model_size_in_billions": "0_1", "quantization": "F16", "replica": 1, "n_gpu": None,
    }  # fmt: skip


def test_the_seed_pair_sets_the_flag_and_builds_llama_cpp_python_beside_xllamacpp(real_matrix: Matrix) -> None:
    text = df.render(df.target_for(real_matrix, SEED, lock_dir=LOCKS))
    assert 'USE_XLLAMACPP="1"' in text
    # llama-cpp-python (an sdist in the lock) is compiled in the image: its toolchain and portable flags
    assert "--no-install-recommends ca-certificates libgomp1 gcc g++ cmake ninja-build \\" in text
    assert 'ENV CMAKE_ARGS="-DGGML_NATIVE=OFF"' in text
    assert "' xinference 1.4.0" in text
    assert "' xllamacpp 0.1.11" in text
    registration = _option(_cmd(text), "--register")
    assert registration["version"] == 1
    assert registration["model_specs"] == [
        {"model_format": "ggufv2", "model_size_in_billions": "0_1", "model_id": None, "model_uri": "/models",
         "model_file_name_template": "smoke-gemma3-F16.gguf", "quantizations": ["F16"]}
    ]  # fmt: skip


def test_dockerfile_and_check_know_the_frontend_pairs(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("dockerfile", "smoke-gemma3", "--frontend", "xinference", "--json",
                 env={"ENVMAN_DOCKERFILES": str(out)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)
    assert [(w["frontend"], w["image"]) for w in written] == [
        ("xinference==1.4.0", "envman/xinference:1.4.0-xllamacpp-0.1.11-cpu"),
        ("xinference==4.1.0", "envman/xinference:4.1.0-xllamacpp-2026.10.11549-cpu"),
    ]
    result = cli("dockerfile", "--frontend", "xinference==4.1.0", env={"ENVMAN_DOCKERFILES": str(out)})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "xinference-1.4.0-xllamacpp-0.1.11-cpu.Dockerfile",
        "xinference-4.1.0-xllamacpp-2026.10.11549-cpu.Dockerfile",
    ]
    check = cli("dockerfile", "--check", env={"ENVMAN_DOCKERFILES": str(out)})  # the whole set: others missing
    assert check.returncode == 1
    assert "xinference-4.1.0-xllamacpp-2026.10.11549-cpu.Dockerfile" not in check.stdout + check.stderr
    assert "xllamacpp-2026.10.11549-cpu.Dockerfile: missing" in " ".join((check.stdout + check.stderr).split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frontend", "nope"], "unknown frontend 'nope'"),
        (["--frontend", "xinference==9.9.9"], "no known-good pair under xinference==9.9.9 matches"),
        (["--frontend", "xinference", "--arg", "--n-gpu-layers"],
         "--arg does not go through --frontend xinference: it launches the engine itself"),
        (["--frontend", "xinference", "--env", "FLAG=1\nUSER root"],
         "environment value of FLAG '1\\nUSER root' contains a control character"),
        (["--frontend", "xinference", "--env", "BAD NAME=1"], "environment variable name 'BAD NAME' is not valid"),
    ],
)  # fmt: skip
def test_hostile_or_wrong_options_are_refused(cli: Cli, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    result = cli("dockerfile", *args, env={"ENVMAN_DOCKERFILES": str(out)})
    assert result.returncode == 2, result.stderr
    assert f"error: {message}" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_a_hostile_chat_template_and_served_name_stay_inside_the_cmd(real_matrix: Matrix) -> None:
    target = df.target_for(real_matrix, NEWEST, lock_dir=LOCKS)
    plan = Planner(real_matrix, df.plan_host(real_matrix, NEWEST)).plan(
        PlanRequest(model="smoke-gemma3", engine="xllamacpp", version="2026.10.11549", frontend="xinference==4.1.0")
    )
    template = '{{ x }}"]\nRUN echo pwned\nCMD ["$HOME `id`\\'
    hostile = serve.container_launch(
        plan, weights="/models/smoke-gemma3-F16.gguf", port=8000, home="/home/envman/.xinference",
        chat_template=template, served_model_name="m-1",
    )  # fmt: skip
    text = df.render(dataclasses.replace(target, command=hostile.argv, ready_path=hostile.ready_path))
    assert _instructions(text) == _instructions(df.render(target))  # no instruction was smuggled in
    assert _option(_cmd(text), "--register")["chat_template"] == template
    # a served name that is no plain URL path cannot reach the HEALTHCHECK URL
    sneaky = serve.container_launch(
        plan, weights="/models/smoke-gemma3-F16.gguf", port=8000, home="/h", chat_template=None,
        served_model_name="m?x=@evil",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="ready path '/v1/models/m\\?x=@evil' is not a plain URL path"):
        df.render(dataclasses.replace(target, ready_path=sneaky.ready_path))
    with pytest.raises(UsageError, match="contains a control character"):
        df.render(dataclasses.replace(target, command=("python", "a\nb")))


def test_the_launcher_refuses_a_command_line_without_its_parts() -> None:
    import subprocess

    launcher = REPO / "envman" / "frontends" / "launchers" / "envman_xinference_serve.py"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for args in ([], ["--port", "8000", "--", "xinference-local"]):
        result = subprocess.run([sys.executable, str(launcher), *args], capture_output=True, text=True, env=env)
        assert result.returncode == 2
        assert result.stderr.startswith("envman_xinference_serve: ")


def test_up_docker_runs_the_launcher_with_the_template_read_from_the_host_weights(
    real_matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``up --docker --frontend xinference``: the container's command registers the mounted weights,
    with the chat template read on this machine (the container only sees the mount)."""
    from envman.docker import serve as container_serve
    from envman.engines.launch import Bindings
    from envman.matrix.schema import Format
    from envman.synth import synthesize

    monkeypatch.setenv("ENVMAN_HOME", str(tmp_path / "home"))
    weights = synthesize(real_matrix.models["smoke-gemma3"], Format.GGUF)
    plan = Planner(real_matrix, df.plan_host(real_matrix, SEED)).plan(
        PlanRequest(model="smoke-gemma3", frontend="xinference==1.4.0")
    )
    inner = container_serve.inner_launch(plan, Bindings(served_model_name="mine"), f"/models/{weights.name}", weights)
    assert inner.argv[:3] == ("python", "-m", "envman_xinference_serve")
    assert inner.argv[inner.argv.index("--") :] == ("--", "xinference-local", "--host", "0.0.0.0", "--port", "8000")
    registration = _option(list(inner.argv), "--register")
    assert registration["chat_template"] == CHAT_TEMPLATE
    assert registration["model_name"] == "mine"
    assert inner.ready_path == "/v1/models/mine"
    assert inner.env["USE_XLLAMACPP"] == "1"


def test_build_docker_with_the_frontend_needs_a_daemon(cli: Cli) -> None:
    dead = {"DOCKER_HOST": "unix:///nonexistent/envman-test-docker.sock"}
    result = cli("build", "smoke-gemma3", "--docker", "--frontend", "xinference", "--hardware", "cpu", env=dead)
    assert result.returncode == 3, result.stderr
    assert "error: no Docker daemon answers" in " ".join(result.stderr.split())
    assert "not supported" not in result.stderr
