"""transformers: the ``transformers serve`` OpenAI-compatible server."""

from __future__ import annotations

from envman.engines.base import Launch, LaunchSpec


class TransformersAdapter:
    checks_api_key = False  # its server has no authentication: --api-key is refused
    name = "transformers"

    def launch(self, spec: LaunchSpec) -> Launch:
        argv = [
            "transformers", "serve",
            "--host", spec.host,
            "--port", str(spec.port),
            "--force-model", spec.model_path,
        ]  # fmt: skip
        if spec.dtype:
            argv += ["--dtype", spec.dtype]
        if spec.trust_remote_code:
            argv.append("--trust-remote-code")
        argv += spec.extra_args
        return Launch(argv=tuple(argv), env=dict(spec.env), ready_path="/v1/models")
