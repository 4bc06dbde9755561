"""llama-cpp-python (legacy): ``llama_cpp.server`` through envman's ``envman_llama_cpp_server``.

Read from llama_cpp_python-0.3.8.tar.gz and 0.3.36 (llama_cpp/server/):

- the flags are the fields of the pydantic settings ``ModelSettings``/``ServerSettings``
  (settings.py), turned into ``--<field>`` by cli.py ``add_args_from_model``: ``--model``,
  ``--model_alias``, ``--host``, ``--port``, ``--n_ctx``, ``--n_gpu_layers``, the same in both;
- ``ServerSettings.api_key`` is read from the environment variable ``API_KEY`` (pydantic-settings,
  no prefix): the launcher moves envman's ``ENVMAN_API_KEY`` there, so the key is never on argv,
  and drops the ``HOST``/``PORT``/``CONFIG_FILE``/``API_KEY`` a shell may have set (they
  override the flags; see envman/engines/launchers/envman_llama_cpp_server.py);
- every route, ``/v1/models`` included, depends on ``authenticate``; FastAPI's ``/openapi.json``
  does not, and the model is loaded before uvicorn listens (app.py ``create_app`` ->
  ``set_llama_proxy``): it is the readiness probe, with or without a key.
"""

from __future__ import annotations

from envman.engines.base import Launch, LaunchSpec
from envman.matrix.schema import Accelerator


class LlamaCppPythonAdapter:
    name = "llama-cpp-python"

    def launch(self, spec: LaunchSpec) -> Launch:
        argv = [
            "python", "-m", "envman_llama_cpp_server",
            "--model", spec.model_path,
            "--model_alias", spec.served_model_name,
            "--host", spec.host,
            "--port", str(spec.port),
            "--n_ctx", str(spec.max_model_len),
        ]  # fmt: skip
        if spec.accelerator is Accelerator.CUDA:
            argv += ["--n_gpu_layers", "-1"]
        argv += spec.extra_args
        env = dict(spec.env)
        if spec.api_key:
            env["ENVMAN_API_KEY"] = spec.api_key  # the launcher hands it to ServerSettings.api_key
        return Launch(argv=tuple(argv), env=env, ready_path="/openapi.json")
