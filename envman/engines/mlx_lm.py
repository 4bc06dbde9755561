"""mlx-lm: ``mlx_lm.server`` on Apple silicon."""

from __future__ import annotations

from envman.engines.base import Launch, LaunchSpec


class MlxLmAdapter:
    checks_api_key = False  # its server has no authentication: --api-key is refused
    name = "mlx-lm"

    def launch(self, spec: LaunchSpec) -> Launch:
        argv = [
            "python", "-m", "mlx_lm.server",
            "--model", spec.model_path,
            "--host", spec.host,
            "--port", str(spec.port),
        ]  # fmt: skip
        if spec.trust_remote_code:
            argv.append("--trust-remote-code")
        argv += spec.extra_args
        return Launch(argv=tuple(argv), env=dict(spec.env), ready_path="/v1/models")
