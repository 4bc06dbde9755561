"""LMDeploy: ``lmdeploy serve api_server``.

Its server takes API keys only as ``--api-keys``: envman passes the key through the
``envman_secret_args`` launcher (the ``lmdeploy`` console script run in-process), so it never
appears on the command line.

Flags read from lmdeploy-0.18.0-cp311-cp311-manylinux_2_28_x86_64.whl, lmdeploy/cli/serve.py
and cli/utils.py: ``--model-name``, ``--server-name``, ``--server-port``, ``--tp``,
``--session-len``, ``--dtype``, ``--backend``, ``--api-keys``. Locked, not yet smoke-tested
(no CPU build).
"""

from __future__ import annotations

from envman.engines.base import SECRET_KEY_VARIABLE, Launch, LaunchSpec, key_off_argv


class LmdeployAdapter:
    name = "lmdeploy"

    def launch(self, spec: LaunchSpec) -> Launch:
        args = [
            "serve", "api_server", spec.model_path,
            "--model-name", spec.served_model_name,
            "--server-name", spec.host,
            "--server-port", str(spec.port),
            "--tp", str(spec.tensor_parallel_size),
            "--session-len", str(spec.max_model_len),
        ]  # fmt: skip
        # --cache-max-entry-count is a share of the memory left after the weights, not of the
        # GPU: it is not vLLM's --gpu-memory-utilization, so lmdeploy keeps its default.
        if spec.dtype:
            args += ["--dtype", spec.dtype]
        args += spec.extra_args
        argv, env = key_off_argv(["lmdeploy"], args, spec, "--api-keys", script="lmdeploy")
        return Launch(argv=tuple(argv), env=env, ready_path="/v1/models", secret_env=frozenset({SECRET_KEY_VARIABLE}))
