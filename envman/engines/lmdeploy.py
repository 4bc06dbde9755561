"""LMDeploy: ``lmdeploy serve api_server``.

Flags read from lmdeploy-0.18.0-cp311-cp311-manylinux_2_28_x86_64.whl, lmdeploy/cli/serve.py
and cli/utils.py: ``--model-name``, ``--server-name``, ``--server-port``, ``--tp``,
``--session-len``, ``--dtype``, ``--backend``, ``--api-keys``. Locked, not yet smoke-tested
(no CPU build).
"""

from __future__ import annotations

from envman.engines.base import Launch, LaunchSpec


class LmdeployAdapter:
    name = "lmdeploy"

    def launch(self, spec: LaunchSpec) -> Launch:
        argv = [
            "lmdeploy", "serve", "api_server", spec.model_path,
            "--model-name", spec.served_model_name,
            "--server-name", spec.host,
            "--server-port", str(spec.port),
            "--tp", str(spec.tensor_parallel_size),
            "--session-len", str(spec.max_model_len),
        ]  # fmt: skip
        # --cache-max-entry-count is a share of the memory left after the weights, not of the
        # GPU: it is not vLLM's --gpu-memory-utilization, so lmdeploy keeps its default.
        if spec.dtype:
            argv += ["--dtype", spec.dtype]
        if spec.api_key:
            argv += ["--api-keys", spec.api_key]
        argv += spec.extra_args
        return Launch(argv=tuple(argv), env=dict(spec.env), ready_path="/v1/models")
