"""Engines whose OpenAI server checks no API key (transformers serve, mlx_lm.server).

Passing the key anyway would give an open server that looks closed; envman refuses instead.
"""

from __future__ import annotations

from envman.engines.base import LaunchSpec
from envman.errors import UsageError


def refuse_api_key(engine: str, spec: LaunchSpec) -> None:
    """Engines whose server checks no key: serving with ``--api-key`` would be an open server that looks closed."""
    if spec.api_key:
        raise UsageError(
            f"{engine} cannot check an API key: its server has no authentication",
            hint="serve without --api-key behind a reverse proxy that checks the key (bound to 127.0.0.1), "
            "or choose an engine that checks keys (--engine vllm, xllamacpp or llama-cpp-python)",
        )
