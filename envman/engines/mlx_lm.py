"""mlx-lm: ``mlx_lm.server`` (Apple silicon, or Linux with MLX's CPU build ``mlx[cpu]``).

envman runs it through ``envman_mlx_lm_server`` (envman/engines/launchers/), which maps the
served model name to ``--model`` (mlx_lm.server would load any other requested name from the hub).

Flags read from mlx_lm-0.32.2-py3-none-any.whl, mlx_lm/server.py (argparse): ``--model``,
``--host``, ``--port``, ``--trust-remote-code``; ``GET /health`` answers 200 once it serves.
mlx_lm.server has no API-key option and checks no Authorization header, so a key is refused.
"""

from __future__ import annotations

from envman.engines.base import Launch, LaunchSpec
from envman.engines.no_api_key import refuse_api_key


class MlxLmAdapter:
    checks_api_key = False  # its server has no authentication: --api-key is refused
    name = "mlx-lm"

    def launch(self, spec: LaunchSpec) -> Launch:
        refuse_api_key(self.name, spec)
        argv = [
            "python", "-m", "envman_mlx_lm_server",
            "--served-model-name", spec.served_model_name,
            "--model", spec.model_path,
            "--host", spec.host,
            "--port", str(spec.port),
        ]  # fmt: skip
        if spec.trust_remote_code:
            argv.append("--trust-remote-code")
        argv += spec.extra_args
        return Launch(argv=tuple(argv), env=dict(spec.env), ready_path="/health")
