"""llama-cpp-python (legacy): ``python -m llama_cpp.server``."""

from __future__ import annotations

from envman.engines.base import Launch, LaunchSpec
from envman.matrix.schema import Accelerator


class LlamaCppPythonAdapter:
    name = "llama-cpp-python"

    def launch(self, spec: LaunchSpec) -> Launch:
        argv = [
            "python", "-m", "llama_cpp.server",
            "--model", spec.model_path,
            "--model_alias", spec.served_model_name,
            "--host", spec.host,
            "--port", str(spec.port),
            "--n_ctx", str(spec.max_model_len),
        ]  # fmt: skip
        if spec.accelerator is Accelerator.CUDA:
            argv += ["--n_gpu_layers", "-1"]
        if spec.api_key:
            argv += ["--api_key", spec.api_key]
        argv += spec.extra_args
        return Launch(argv=tuple(argv), env=dict(spec.env), ready_path="/v1/models")
