"""SGLang: ``python -m sglang.launch_server``.

Its server takes the API key only as ``--api-key``: envman passes it through the
``envman_secret_args`` launcher, so it never appears on the command line.

Flags read from sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl: ServerArgs fields become
``--<field-with-dashes>`` (sglang/srt/arg_groups/arg_utils.py ``_field_to_cli_name``):
``model_path`` (fields/model.py, alias ``--model``), ``served_model_name``, ``host``, ``port``,
``api_key`` (fields/serving.py), ``tp_size`` (fields/parallel.py, alias
``--tensor-parallel-size``), ``context_length``, ``dtype``, ``trust_remote_code``
(fields/model.py), ``mem_fraction_static``, ``chunked_prefill_size`` (fields/schedule.py);
``GET /health`` (srt/entrypoints/http_server.py). Locked, not yet smoke-tested (no CPU build).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from envman.engines.base import SECRET_KEY_VARIABLE, Launch, LaunchSpec, key_off_argv

if TYPE_CHECKING:
    from envman.engines.launch import NodeSpec

DIST_INIT_PORT = 5000  # the port envman gives --dist-init-addr on the leader


class SglangAdapter:
    name = "sglang"

    def launch(self, spec: LaunchSpec) -> Launch:
        return self._launch(spec, ())

    def _launch(self, spec: LaunchSpec, node_args: tuple[str, ...]) -> Launch:
        args = [
            "--model-path", spec.model_path,
            "--served-model-name", spec.served_model_name,
            "--host", spec.host,
            "--port", str(spec.port),
            "--tp-size", str(spec.tensor_parallel_size),
            "--context-length", str(spec.max_model_len),
            "--mem-fraction-static", f"{spec.memory_utilization:g}",
            "--chunked-prefill-size", str(spec.max_num_batched_tokens),
        ]  # fmt: skip
        if spec.dtype:
            args += ["--dtype", spec.dtype]
        if spec.trust_remote_code:
            args.append("--trust-remote-code")
        args += node_args
        args += spec.extra_args
        argv, env = key_off_argv(
            ["python", "-m", "sglang.launch_server"], args, spec, "--api-key", module="sglang.launch_server"
        )
        return Launch(argv=tuple(argv), env=env, ready_path="/health", secret_env=frozenset({SECRET_KEY_VARIABLE}))

    def node_launch(self, spec: LaunchSpec, node: NodeSpec) -> tuple[tuple[tuple[str, ...], ...], Launch]:
        """One node of a multi-node plan: every node runs launch_server; rank 0 serves HTTP."""
        leader = f"[{node.leader_address}]" if ":" in node.leader_address else node.leader_address
        args: tuple[str, ...] = (
            "--nnodes",
            str(node.nodes),
            "--node-rank",
            node.rank,
            "--dist-init-addr",
            f"{leader}:{DIST_INIT_PORT}",
        )
        if node.pipeline_parallel_size > 1:
            args += ("--pp-size", str(node.pipeline_parallel_size))
        return (), self._launch(spec, args)
