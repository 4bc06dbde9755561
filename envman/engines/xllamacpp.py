"""xllamacpp: llama.cpp's server through Xinference's Python binding.

xllamacpp has no console script; envman runs a small launcher module
(``envman_xllamacpp_server``) with the environment's interpreter. The launcher copes
with the API drift between 0.1.x and current releases (see FACTS.md).
"""

from __future__ import annotations

from envman.engines.base import Launch, LaunchSpec
from envman.matrix.schema import Accelerator

KEY_VARIABLE = "ENVMAN_API_KEY"  # read by the launcher


class XllamacppAdapter:
    name = "xllamacpp"

    def launch(self, spec: LaunchSpec) -> Launch:
        argv = [
            "python", "-m", "envman_xllamacpp_server",
            "--model", spec.model_path,
            "--served-model-name", spec.served_model_name,
            "--host", spec.host,
            "--port", str(spec.port),
            "--ctx-size", str(spec.max_model_len),
        ]  # fmt: skip
        if spec.accelerator is Accelerator.CUDA:
            argv += ["--n-gpu-layers", "-1"]
        env = dict(spec.env)
        if spec.api_key:
            env[KEY_VARIABLE] = spec.api_key  # read by the launcher: kept out of argv
        argv += spec.extra_args
        return Launch(argv=tuple(argv), env=env, ready_path="/health", secret_env=frozenset({KEY_VARIABLE}))
