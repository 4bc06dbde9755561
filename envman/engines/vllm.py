"""vLLM: ``vllm serve`` on CUDA; the module entry point on the CPU build."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from envman.engines.base import Launch, LaunchSpec
from envman.matrix.schema import Accelerator, NodeMechanism

if TYPE_CHECKING:
    from envman.engines.launch import NodeSpec

RAY_PORT = 6379  # the port envman gives `ray start --head` (and the workers' --address)
DP_RPC_PORT = 13345  # --data-parallel-rpc-port, as in vLLM's docs/serving/data_parallel_deployment.md


class VllmAdapter:
    name = "vllm"

    def launch(self, spec: LaunchSpec) -> Launch:
        return self._launch(spec, ())

    def node_launch(self, spec: LaunchSpec, node: NodeSpec) -> tuple[tuple[tuple[str, ...], ...], Launch]:
        """One node of a multi-node plan: (commands run first, the node's long-running command)."""
        if node.mechanism is NodeMechanism.RAY:
            ray_address = f"{_host(node.leader_address)}:{RAY_PORT}"
            if not node.leader:  # a Ray worker runs no vLLM process of its own: the leader's reaches it
                argv = ("ray", "start", "--block", f"--address={ray_address}")
                return (), Launch(argv=argv, env=dict(spec.env), ready_path="")
            pp = ["--pipeline-parallel-size", str(node.pipeline_parallel_size), "--distributed-executor-backend", "ray"]
            return (("ray", "start", "--head", f"--port={RAY_PORT}"),), self._launch(spec, pp)
        if node.mechanism is NodeMechanism.MULTIPROCESSING:
            args = [
                "--pipeline-parallel-size", str(node.pipeline_parallel_size),
                "--nnodes", str(node.nodes),
                "--node-rank", node.rank,
                "--master-addr", node.leader_address,
            ]  # fmt: skip
        elif node.mechanism is NodeMechanism.DATA_PARALLEL:
            args = [
                "--data-parallel-size", str(node.data_parallel_size),
                "--data-parallel-size-local", "1",
                "--data-parallel-address", node.leader_address,
                "--data-parallel-rpc-port", str(DP_RPC_PORT),
            ]  # fmt: skip
            if node.expert_parallel:
                args.append("--enable-expert-parallel")
            if not node.leader:  # one data-parallel rank per node: the node's rank is its start rank
                args += ["--data-parallel-start-rank", node.rank]
        else:
            raise ValueError(f"vLLM has no {node.mechanism.value} mechanism")
        if not node.leader:
            args.append("--headless")  # workers serve no API: the leader does
        return (), self._launch(spec, args, headless=not node.leader)

    def _launch(self, spec: LaunchSpec, node_args: list[str] | tuple[str, ...], headless: bool = False) -> Launch:
        env = dict(spec.env)
        if spec.accelerator is Accelerator.CPU and headless:
            # only the CLI's `serve` reads --headless (vllm/entrypoints/cli/serve.py run_headless); the
            # server module takes the flag and serves anyway: the CLI, through envman's launcher
            argv = ["python", "-m", "envman_vllm_cli", "serve", spec.model_path]
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, math.ceil(spec.kv_cache_gib))))
        elif spec.accelerator is Accelerator.CPU:
            # vllm-cpu's `vllm` console script fails (no metadata for "vllm"): use the module.
            argv = ["python", "-m", "vllm.entrypoints.openai.api_server", "--model", spec.model_path]
            # On CPU the KV cache is sized by VLLM_CPU_KVCACHE_SPACE (GiB).
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, math.ceil(spec.kv_cache_gib))))
        else:
            argv = ["vllm", "serve", spec.model_path]
        argv += [
            "--served-model-name", spec.served_model_name,
            "--host", spec.host,
            "--port", str(spec.port),
            "--max-model-len", str(spec.max_model_len),
            "--gpu-memory-utilization", f"{spec.memory_utilization:g}",
        ]  # fmt: skip
        if spec.dtype:
            argv += ["--dtype", spec.dtype]
        if spec.accelerator is not Accelerator.CPU:
            argv += [
                "--tensor-parallel-size", str(spec.tensor_parallel_size),
                "--enable-chunked-prefill",
                "--max-num-batched-tokens", str(spec.max_num_batched_tokens),
            ]  # fmt: skip
        if spec.trust_remote_code:
            argv.append("--trust-remote-code")
        argv += node_args
        if spec.api_key:
            # vLLM reads VLLM_API_KEY: the key stays out of argv, which every local user can read.
            env["VLLM_API_KEY"] = spec.api_key
        argv += spec.extra_args
        return Launch(argv=tuple(argv), env=env, ready_path="/health", secret_env=frozenset({"VLLM_API_KEY"}))


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address
