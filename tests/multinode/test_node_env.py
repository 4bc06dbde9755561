"""What every node of a multi-node plan needs: the network-interface variables the engine documents
(`--network-interface`), and the same host-stack `requires` on every rank."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from envman.engines.launch import Bindings, node_launches
from envman.errors import UsageError
from envman.hardware.spec import parse_hardware
from envman.matrix.schema import Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan
from tests.helpers import cli_env

ARGS = ("llama-3.1-405b", "--hardware", "H100x8", "--nodes", "2")
IFNAMES = {"NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"}


def envman(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args], env=cli_env(home), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def plan_for(matrix: Matrix, model: str, nodes: int, **options: object) -> Plan:
    request = PlanRequest(model=model, nodes=nodes, **options)  # type: ignore[arg-type]
    return Planner(matrix, parse_hardware("H100x8", matrix.gpus)).plan(request)


def test_every_vllm_mechanism_names_the_interface_variables_with_evidence(real_matrix: Matrix) -> None:
    for mechanism in real_matrix.engines["vllm"].multinode:
        assert set(mechanism.interface_env) == IFNAMES
        assert "docs/usage/troubleshooting.md" in mechanism.evidence
    for mechanism in real_matrix.engines["sglang"].multinode:  # not read from its released artifacts
        assert mechanism.interface_env == ()


@pytest.mark.parametrize(
    ("model", "options"),
    [("llama-3.1-405b", {}), ("deepseek-v3", {}), ("llama-3.1-405b", {"engine": "vllm", "version": "0.10.0"})],
)
def test_the_interface_reaches_every_node(real_matrix: Matrix, model: str, options: dict[str, str]) -> None:
    plan = plan_for(real_matrix, model, 2, **options)
    assert any("--network-interface IFACE sets NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME" in n for n in plan.notes)
    for node in node_launches(plan, Bindings(network_interface="ens5"), "10.0.0.1"):
        assert {k: v for k, v in node.launch.env.items() if k in IFNAMES} == dict.fromkeys(IFNAMES, "ens5")
    for node in node_launches(plan, Bindings(), "10.0.0.1"):  # nothing guessed without it
        assert not IFNAMES & set(node.launch.env)


@pytest.mark.parametrize("bad", ["eth0;rm -rf /", "$(id)", "a b", "x" * 16, ""])
def test_a_hostile_interface_name_is_refused(real_matrix: Matrix, bad: str) -> None:
    with pytest.raises(UsageError, match="is not a network interface name"):
        node_launches(plan_for(real_matrix, "llama-3.1-405b", 2), Bindings(network_interface=bad))


def test_an_engine_without_documented_variables_refuses_the_option(real_matrix: Matrix) -> None:
    plan = plan_for(real_matrix, "deepseek-v3", 2, engine="sglang", version="0.5.4")
    with pytest.raises(UsageError, match="documents no network-interface variable"):
        node_launches(plan, Bindings(network_interface="eth0"))


def test_manifests_and_dry_run_carry_it_and_one_node_refuses_it(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all(envman(tmp_path, "k8s", *ARGS, "--network-interface", "ib0").stdout))
    template = docs[0]["spec"]["leaderWorkerTemplate"]
    for role in ("leaderTemplate", "workerTemplate"):
        env = {e["name"]: e.get("value") for e in template[role]["spec"]["containers"][0]["env"]}
        assert {k: env[k] for k in IFNAMES} == dict.fromkeys(IFNAMES, "ib0")
    dry = json.loads(envman(tmp_path, "up", *ARGS, "--dry-run", "--json", "--network-interface", "ib0").stdout)
    assert all(env["NCCL_SOCKET_IFNAME"] == "ib0" for env in dry["node_env"])
    single = envman(tmp_path, "k8s", "gemma-3-27b-it", "--hardware", "H100x8", "--network-interface", "ib0")
    assert single.returncode == 2
    assert "runs on one node here" in single.stderr
    assert envman(tmp_path, "up", "smoke-llama", "--dry-run", "--network-interface", "ib0").returncode == 2


def test_every_node_gets_the_plans_requires(tmp_path: Path) -> None:
    data = json.loads(envman(tmp_path, "plan", *ARGS, "--json").stdout)
    assert len(data["node_requires"]) == 2
    for requires in data["node_requires"]:
        assert requires == {**data["requires"], "gpus": 8}
        assert requires["min_driver"]
        assert requires["cuda_runtime"]
