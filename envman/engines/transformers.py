"""transformers: ``transformers serve`` where it answers OpenAI chat completions, else envman's launcher.

envman runs ``python -m envman_transformers_server`` (envman/engines/launchers/) with the
environment's interpreter. The launcher looks at the installed release: from 5.5.0 it runs
``transformers serve MODEL --host H --port P --dtype D`` in its place (``os.execv``); earlier
releases (no ``serve`` before 4.54.0; 4.54-5.4 answer chat completions as an SSE stream) are
served by the launcher itself with ``generate``. Both answer ``GET /health`` once the model is
loaded. See the launcher's docstring for the evidence per release range.
"""

from __future__ import annotations

from envman.engines.base import Launch, LaunchSpec
from envman.engines.no_api_key import refuse_api_key
from envman.matrix.schema import Accelerator


class TransformersAdapter:
    checks_api_key = False  # its server has no authentication: --api-key is refused
    name = "transformers"

    def launch(self, spec: LaunchSpec) -> Launch:
        refuse_api_key(self.name, spec)
        argv = [
            "python", "-m", "envman_transformers_server",
            "--model", spec.model_path,
            "--served-model-name", spec.served_model_name,
            "--host", spec.host,
            "--port", str(spec.port),
            "--device", "cpu" if spec.accelerator is Accelerator.CPU else "auto",
        ]  # fmt: skip
        if spec.dtype:
            argv += ["--dtype", spec.dtype]
        if spec.trust_remote_code:
            argv.append("--trust-remote-code")
        argv += spec.extra_args
        # huggingface_hub's CLI asks PyPI for a newer release at start unless told not to
        env = {"HF_HUB_DISABLE_UPDATE_CHECK": "1", **spec.env}
        return Launch(argv=tuple(argv), env=env, ready_path="/health")
