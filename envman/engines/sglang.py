"""SGLang: ``python -m sglang.launch_server``."""

from __future__ import annotations

from envman.engines.base import Launch, LaunchSpec


class SglangAdapter:
    name = "sglang"

    def launch(self, spec: LaunchSpec) -> Launch:
        argv = [
            "python", "-m", "sglang.launch_server",
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
            argv += ["--dtype", spec.dtype]
        if spec.trust_remote_code:
            argv.append("--trust-remote-code")
        if spec.api_key:
            argv += ["--api-key", spec.api_key]
        argv += spec.extra_args
        return Launch(argv=tuple(argv), env=dict(spec.env), ready_path="/health")
