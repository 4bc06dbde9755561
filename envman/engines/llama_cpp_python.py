"""llama-cpp-python (legacy): ``python -m llama_cpp.server``.

Read from llama_cpp_python-0.3.8.tar.gz and 0.3.36 (llama_cpp/server/):

- the flags are the fields of the pydantic settings ``ModelSettings``/``ServerSettings``
  (settings.py), turned into ``--<field>`` by cli.py ``add_args_from_model``: ``--model``,
  ``--model_alias``, ``--host``, ``--port``, ``--n_ctx``, ``--n_gpu_layers``;
- ``ServerSettings`` is a pydantic-settings ``BaseSettings`` without an env prefix, so the
  ``api_key`` field is also read from the environment variable ``API_KEY``: the key goes there,
  never on argv; and ``__main__.py`` lets ``HOST``/``PORT`` from the environment override the
  flags (``os.getenv("HOST", server_settings.host)``), so both are set to the planned values;
- every route, ``/v1/models`` included, depends on ``authenticate``; FastAPI's ``/openapi.json``
  does not, and the model is loaded before uvicorn listens (``create_app`` ->
  ``set_llama_proxy``): it is the readiness probe with or without a key.
"""

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
        argv += spec.extra_args
        env = {**spec.env, "HOST": spec.host, "PORT": str(spec.port)}
        if spec.api_key:
            env["API_KEY"] = spec.api_key  # ServerSettings.api_key, read by pydantic-settings
        return Launch(argv=tuple(argv), env=env, ready_path="/openapi.json")
