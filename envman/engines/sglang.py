"""SGLang: ``python -m sglang.launch_server``.

Flags read from sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl: ServerArgs fields become
``--<field-with-dashes>`` (sglang/srt/arg_groups/arg_utils.py ``_field_to_cli_name``):
``model_path`` (fields/model.py, alias ``--model``), ``served_model_name``, ``host``, ``port``,
``api_key`` (fields/serving.py), ``tp_size`` (fields/parallel.py, alias
``--tensor-parallel-size``), ``context_length``, ``dtype``, ``trust_remote_code``
(fields/model.py), ``mem_fraction_static``, ``chunked_prefill_size`` (fields/schedule.py);
``GET /health`` (srt/entrypoints/http_server.py). Locked, not yet smoke-tested (no CPU build).
"""

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
