"""`envman k8s` manifests, validated; per-node flags checked against the releases' own parsers."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from envman import paths, pypi
from envman.engines.launch import Bindings, launch, node_launches
from envman.errors import UsageError
from envman.hardware.spec import parse_hardware
from envman.k8s.manifests import Options, build, dump
from envman.k8s.validate import problems
from envman.matrix.schema import Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan
from envman.probe.readers._archive import members, python_sources, sdist

Cli = Callable[..., subprocess.CompletedProcess[str]]


def make(matrix: Matrix, model: str, hardware: str = "H100x8", nodes: int | None = 2, **options: Any) -> Plan:
    return Planner(matrix, parse_hardware(hardware, matrix.gpus)).plan(PlanRequest(model=model, nodes=nodes, **options))


def container(document: dict[str, Any], part: str) -> dict[str, Any]:
    spec = document["spec"]["leaderWorkerTemplate"][part]["spec"]
    result: dict[str, Any] = spec["containers"][0]
    return result


@pytest.mark.parametrize(
    ("model", "options"),
    [
        ("llama-3.1-405b", {}),
        ("deepseek-v3", {}),
        ("llama-3.1-405b", {"engine": "vllm", "version": "0.10.0"}),
        ("deepseek-v3", {"engine": "sglang", "version": "0.5.4"}),
    ],
)
def test_leaderworkerset_validates_and_carries_each_rank(
    real_matrix: Matrix, model: str, options: dict[str, Any]
) -> None:
    plan = make(real_matrix, model, **options)
    documents = build(plan, Options(image="envman/x:1", namespace="llm", api_key=True))
    assert problems(documents) == []
    lws, service = documents
    assert (lws["kind"], lws["spec"]["leaderWorkerTemplate"]["size"], service["kind"]) == (
        "LeaderWorkerSet",
        2,
        "Service",
    )
    leader, worker = container(lws, "leaderTemplate"), container(lws, "workerTemplate")
    assert leader["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert leader["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert "readinessProbe" not in worker
    text = " ".join(worker["command"])
    assert "$(LWS_LEADER_ADDRESS)" in text
    if plan.multinode and plan.multinode.mechanism.value != "ray":
        assert "$(LWS_WORKER_INDEX)" in text
    for c in (leader, worker):
        assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
        for env in c["env"]:
            assert "value" not in env or env["name"] not in ("HF_TOKEN", "VLLM_API_KEY", "ENVMAN_API_KEY")
        assert c["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "envman", "key": "hf-token", "optional": True}
    assert any("secretKeyRef" in e.get("valueFrom", {}) and e["name"] != "HF_TOKEN" for e in leader["env"])
    assert service["spec"]["selector"] == {
        "leaderworkerset.sigs.k8s.io/name": lws["metadata"]["name"],
        "role": "leader",
    }
    assert "127.0.0.1" not in " ".join(leader["command"])  # 0.0.0.0 inside the pod, reached through the Service
    assert yaml.safe_load_all(dump(documents)) is not None
    assert "&id" not in dump(documents)


def test_one_node_is_a_deployment_and_a_service(real_matrix: Matrix) -> None:
    documents = build(make(real_matrix, "gemma-3-27b-it", nodes=2), Options(image="envman/vllm:0.32.0-cuda"))
    assert [d["kind"] for d in documents] == ["Deployment", "Service"]
    assert problems(documents) == []


def test_the_validators_catch_a_broken_manifest(real_matrix: Matrix) -> None:
    documents = build(make(real_matrix, "llama-3.1-405b"), Options(image="envman/x:1"))
    broken = copy.deepcopy(documents)
    broken[0]["spec"]["leaderWorkerTemplate"]["size"] = "two"
    container(broken[0], "workerTemplate")["resources"] = {"limits": "8"}
    broken[1]["spec"]["ports"][0]["port"] = "http"
    found = problems(broken)
    assert any(p.startswith("LeaderWorkerSet/llama-3-1-405b-instruct: 'two' is not of type 'integer'") for p in found)
    assert any(p.startswith("LeaderWorkerSet/llama-3-1-405b-instruct workerTemplate:") for p in found)
    assert any(p.startswith("Service/llama-3-1-405b-instruct:") for p in found)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"namespace": "Prod; rm -rf /"}, "--namespace 'Prod; rm -rf /' is not a Kubernetes name"),
        ({"name": "a" * 64}, f"--name '{'a' * 64}' is not a Kubernetes name"),
        ({"image": "evil\nimage"}, "--image 'evil\\nimage' is not an image reference"),
    ],
)
def test_hostile_values_are_rejected(real_matrix: Matrix, options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        build(make(real_matrix, "llama-3.1-405b"), Options(**{"image": "envman/x:1", **options}))
    assert str(caught.value) == message


def test_k8s_cli_writes_a_file_and_refuses_bad_input(envman_cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "lws.yaml"
    done = envman_cli("k8s", "deepseek-v3", "--hardware", "H100x8", "--nodes", "2", "--output", str(target))
    assert done.returncode == 0, done.stderr
    documents = list(yaml.safe_load_all(target.read_text()))
    assert [d["kind"] for d in documents] == ["LeaderWorkerSet", "Service"]
    assert container(documents[0], "leaderTemplate")["image"] == "envman/vllm:0.32.0-cuda"
    bad = envman_cli("k8s", "deepseek-v3", "--namespace", "Bad NS")
    assert bad.returncode == 2
    assert "is not a Kubernetes name" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_up_refuses_several_nodes_without_dry_run(envman_cli: Cli) -> None:
    done = envman_cli("up", "llama-3.1-405b", "--hardware", "H100x8", "--nodes", "2")
    assert done.returncode == 2
    assert "envman does not start remote nodes" in done.stderr
    assert "--dry-run --nodes 2" in done.stderr


def test_up_dry_run_prints_each_node_and_the_ray_lines(envman_cli: Cli) -> None:
    args = ("up", "llama-3.1-405b", "--hardware", "H100x8", "--nodes", "2", "--dry-run", "--engine", "vllm")
    done = envman_cli(*args, "--version", "0.10.0", "--api-key", "k3y-not-shown")
    assert done.returncode == 0, done.stderr
    assert "ray start --head --port=6379" in done.stdout
    assert "ray start --block '--address=<leader-address>:6379'" in done.stdout
    assert "k3y-not-shown" not in done.stdout + done.stderr
    as_json = envman_cli(*args, "--json")
    data = json.loads(as_json.stdout)
    assert data["plan"]["nodes"] == 2
    assert data["plan"]["pipeline_parallel_size"] == 2
    assert [c[-1] for c in data["node_commands"]] == ["<leader-address>", "--headless"]


def test_plan_json_has_the_node_fields(envman_cli: Cli) -> None:
    done = envman_cli("plan", "deepseek-v3", "--hardware", "H100x8", "--nodes", "2", "--json")
    data = json.loads(done.stdout)
    assert {k: data[k] for k in ("nodes", "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size")} == {
        "nodes": 2, "tensor_parallel_size": 8, "pipeline_parallel_size": 1, "data_parallel_size": 2,
    }  # fmt: skip
    assert len(data["node_commands"]) == len(data["node_env"]) == 2


# -- the flags exist in the released parsers ------------------------------------------------


def _options_in(package: str, version: str, wanted: Callable[[str], bool]) -> set[str]:
    release = next(r for r in pypi.releases(package) if str(r.version) == version)
    file = sdist(release) if package == "vllm" else python_sources(release)
    assert file is not None
    artifact = pypi.download(file, paths.artifacts_dir())
    found: set[str] = set()
    for _, data in members(artifact, wanted):
        found |= set(re.findall(r"[\"'](--[a-z][a-z0-9-]+)[\"']", data.decode("utf-8", "replace")))
    return found


@pytest.mark.network
@pytest.mark.parametrize(
    ("package", "version", "model", "options", "files"),
    [
        (
            "vllm",
            "0.32.0",
            "llama-3.1-405b",
            {},
            ("vllm/engine/arg_utils.py", "vllm/entrypoints/launchers/cli_args.py"),
        ),
        ("vllm", "0.32.0", "deepseek-v3", {}, ("vllm/engine/arg_utils.py", "vllm/entrypoints/launchers/cli_args.py")),
        ("vllm", "0.10.0", "llama-3.1-405b", {"engine": "vllm", "version": "0.10.0"}, ("vllm/engine/arg_utils.py",)),
        ("sglang", "0.5.4", "deepseek-v3", {"engine": "sglang", "version": "0.5.4"}, ("sglang/srt/server_args.py",)),
    ],
)
def test_every_node_flag_is_an_option_of_the_release(
    real_matrix: Matrix, package: str, version: str, model: str, options: dict[str, Any], files: tuple[str, ...]
) -> None:
    known = _options_in(package, version, lambda name: name in files)
    plan = make(real_matrix, model, **options)
    single = {a for a in launch(plan, Bindings()).argv if a.startswith("--")}
    checked = 0
    for node in node_launches(plan, Bindings()):
        if node.launch.argv[0] == "ray":
            continue  # Ray's own CLI, not the engine's
        # the flags a node adds to the one-node command (0.32.0 generates --host/--port from a dataclass)
        flags = {a for a in node.launch.argv if a.startswith("--")} - single
        assert flags, f"rank {node.rank} adds no multi-node flag"
        assert flags - known == set(), f"rank {node.rank}: not options of {package} {version}"
        checked += len(flags)
    assert checked >= 2
