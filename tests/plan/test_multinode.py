"""Plans over several nodes, from the matrix's [[engines.E.multinode]] facts, and each node's commands."""

from __future__ import annotations

import re
from typing import Any

import pytest

from envman.engines.launch import Bindings, node_launches
from envman.errors import ConfigError, TargetError, UsageError
from envman.hardware.spec import parse_hardware
from envman.matrix.load import parse_matrix
from envman.matrix.schema import Matrix
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan


def make(matrix: Matrix, model: str, hardware: str, nodes: int | None, **options: Any) -> Plan:
    return Planner(matrix, parse_hardware(hardware, matrix.gpus)).plan(PlanRequest(model=model, nodes=nodes, **options))


# model, hardware, --nodes, options -> engine, version, nodes, tp, pp, dp, mechanism
PLANS = [
    ("deepseek-v3", "H100x8", 2, {}, ("vllm", "0.32.0", 2, 8, 1, 2, "data-parallel")),
    ("deepseek-v3", "H200x8", 1, {}, ("vllm", "0.32.0", 1, 8, 1, 1, None)),
    ("deepseek-v3", "H200x8", 2, {}, ("vllm", "0.32.0", 1, 8, 1, 1, None)),
    ("llama-3.1-405b", "H100x8", 2, {}, ("vllm", "0.32.0", 2, 8, 2, 1, "multiprocessing")),
    ("llama-3.1-405b", "H100x8", 4, {}, ("vllm", "0.32.0", 2, 8, 2, 1, "multiprocessing")),
    ("llama-3.1-405b", "A100-40GBx8", 4, {}, ("vllm", "0.32.0", 3, 8, 3, 1, "multiprocessing")),
    ("llama-3.1-405b", "H100x8", 2, {"engine": "vllm", "version": "0.10.0"}, ("vllm", "0.10.0", 2, 8, 2, 1, "ray")),
    ("gemma-3-27b-it", "H100x8", 2, {}, ("vllm", "0.32.0", 1, 1, 1, 1, None)),
    (
        "deepseek-v3",
        "H100x8",
        2,
        {"engine": "sglang", "version": "0.5.4"},
        ("sglang", "0.5.4", 2, 8, 2, 1, "dist-init"),
    ),
    (
        "llama-3.1-405b",
        "H100x8",
        2,
        {"engine": "sglang", "version": "0.4.1"},
        ("sglang", "0.4.1", 2, 16, 1, 1, "dist-init"),
    ),
]


@pytest.mark.parametrize(("model", "hardware", "nodes", "options", "expected"), PLANS, ids=lambda v: str(v))
def test_multinode_plans(
    real_matrix: Matrix, model: str, hardware: str, nodes: int, options: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    plan = make(real_matrix, model, hardware, nodes, **options)
    mechanism = plan.multinode.mechanism.value if plan.multinode else None
    got = (plan.engine, str(plan.engine_version), plan.nodes, plan.tensor_parallel_size,
           plan.pipeline_parallel_size, plan.data_parallel_size, mechanism)  # fmt: skip
    assert got == expected
    assert plan.memory.fits
    assert plan.memory.nodes == plan.nodes
    data = plan.to_json()
    assert (data["nodes"], data["pipeline_parallel_size"], data["data_parallel_size"]) == expected[2:3] + expected[4:6]


def test_a_model_that_fits_one_node_stays_on_one_and_says_so(real_matrix: Matrix) -> None:
    plan = make(real_matrix, "gemma-3-27b-it", "H100x8", 2)
    assert plan.nodes == 1
    assert plan.multinode is None
    assert "fits one node of 8x H100: stays on one node (--nodes 2 is not needed)" in plan.notes


def test_too_big_for_one_node_says_how_many_nodes_not_tensor_parallel_16(real_matrix: Matrix) -> None:
    with pytest.raises(TargetError) as caught:
        make(real_matrix, "deepseek-v3", "H100x8", None, engine="vllm")
    text = str(caught.value)
    assert "2 nodes of 8x H100 would fit (--hardware H100x8 --nodes 2)" in text
    assert "tensor_parallel_size 16" not in text


def test_too_few_nodes_says_how_many(real_matrix: Matrix) -> None:
    with pytest.raises(TargetError) as caught:
        make(real_matrix, "llama-3.1-405b", "A100-40GBx8", 2, engine="vllm")
    assert "3 nodes of 8x A100-40GB would fit (--hardware A100-40GBx8 --nodes 3)" in str(caught.value)


def test_a_release_without_a_recorded_mechanism_says_so(real_matrix: Matrix) -> None:
    with pytest.raises(TargetError) as caught:
        make(real_matrix, "llama-3.1-405b", "H100x8", 2, engine="vllm", version="0.6.5", force=False)
    assert "vllm 0.6.5 has no multi-node mechanism recorded in matrix.toml" in str(caught.value)


@pytest.mark.parametrize(
    ("hardware", "nodes", "options", "message"),
    [
        ("cpu", 2, {}, "--nodes 2 needs GPU nodes; the target is CPU only"),
        ("H100x8", 2, {"tensor_parallel_size": 16}, "--tensor-parallel-size 16 needs 16 GPUs; the target has 8"),
    ],
)
def test_bad_node_requests(
    real_matrix: Matrix, hardware: str, nodes: int, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        make(real_matrix, "llama-3.1-405b", hardware, nodes, **options)
    assert str(caught.value).startswith(message)


def test_node_commands_per_mechanism(real_matrix: Matrix) -> None:
    mp = node_launches(make(real_matrix, "llama-3.1-405b", "H100x8", 2), Bindings(), "10.0.0.1")
    assert [n.role for n in mp] == ["leader", "worker"]
    tail = ("--pipeline-parallel-size", "2", "--nnodes", "2", "--node-rank")
    assert mp[0].launch.argv[-8:] == (*tail, "0", "--master-addr", "10.0.0.1")
    assert mp[1].launch.argv[-9:] == (*tail, "1", "--master-addr", "10.0.0.1", "--headless")
    assert mp[0].launch.ready_path == "/health"
    assert mp[1].launch.ready_path == ""

    dp = node_launches(make(real_matrix, "deepseek-v3", "H100x8", 2), Bindings(), "10.0.0.1")
    assert "--enable-expert-parallel" in dp[0].launch.argv
    assert "--headless" not in dp[0].launch.argv
    assert dp[1].launch.argv[-3:] == ("--data-parallel-start-rank", "1", "--headless")

    ray = node_launches(
        make(real_matrix, "llama-3.1-405b", "H100x8", 2, engine="vllm", version="0.10.0"),
        Bindings(),
        "10.0.0.1",
        node_address="10.0.0.2",
    )
    assert ray[0].setup == (("ray", "start", "--head", "--port=6379"),)
    assert ray[0].launch.argv[-2:] == ("--distributed-executor-backend", "ray")
    assert ray[1].launch.argv == ("ray", "start", "--block", "--address=10.0.0.1:6379")
    assert ray[1].launch.env["VLLM_HOST_IP"] == "10.0.0.2"

    sgl = node_launches(
        make(real_matrix, "deepseek-v3", "H100x8", 2, engine="sglang", version="0.5.4"), Bindings(), "fd00::1"
    )
    assert sgl[1].launch.argv[-8:] == (
        "--nnodes", "2", "--node-rank", "1", "--dist-init-addr", "[fd00::1]:5000", "--pp-size", "2",
    )  # fmt: skip


def test_the_api_key_stays_off_every_nodes_argv(real_matrix: Matrix) -> None:
    for plan in (
        make(real_matrix, "llama-3.1-405b", "H100x8", 2),
        make(real_matrix, "deepseek-v3", "H100x8", 2, engine="sglang", version="0.5.4"),
    ):
        for node in node_launches(plan, Bindings(api_key="s3cret-key")):
            assert "s3cret-key" not in " ".join(node.launch.argv)
            assert "s3cret-key" not in str(node.to_json())


def test_one_node_plans_have_no_node_commands(real_matrix: Matrix) -> None:
    with pytest.raises(UsageError, match="uses one node"):
        node_launches(make(real_matrix, "gemma-3-27b-it", "H100x8", 1), Bindings())


def test_a_multinode_entry_is_validated_at_load(real_matrix_path: Any) -> None:
    text = real_matrix_path.read_text(encoding="utf-8")
    broken = text.replace(
        'mechanism = "data-parallel"\nacross = "data"', 'mechanism = "dataparallel"\nacross = "data"', 1
    )
    assert broken != text
    with pytest.raises(ConfigError) as caught:
        parse_matrix(broken, real_matrix_path)
    problems = caught.value.problems  # type: ignore[attr-defined]
    assert any(
        re.search(r"engines\.vllm\.multinode\[0\]\.mechanism: 'dataparallel' is not one of: ray, multiprocessing", p)
        for p in problems
    )


def test_the_rejected_list_names_each_refusal_once(real_matrix: Matrix) -> None:
    """deepseek-v3 has two fp8 artifacts (DeepSeek-V3 and -R1) that every engine refuses in the same
    words: a --nodes plan listed sglang, lmdeploy and transformers twice."""
    host = parse_hardware("H100x8", real_matrix.gpus)
    plan = Planner(real_matrix, host).plan(PlanRequest(model="deepseek-v3", nodes=2))
    assert (plan.engine, plan.nodes) == ("vllm", 2)
    assert len(plan.rejected) == len(set(plan.rejected))
    sglang = [r for r in plan.rejected if r.engine == "sglang"]
    assert len(sglang) == 1
    assert sglang[0].reason.endswith("sglang 0.5.23 has no multi-node mechanism recorded in matrix.toml")
