"""The adapter interface and the registry that finds adapters by engine name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from envman.errors import ConfigError
from envman.matrix.schema import Accelerator

ENTRY_POINT_GROUP = "envman.engines"


@dataclass(frozen=True)
class LaunchSpec:
    """Everything an adapter needs to build a server command line."""

    model_path: str  # local path, or a hub repo id the engine downloads itself
    served_model_name: str
    host: str
    port: int
    accelerator: Accelerator
    dtype: str | None  # None: the engine's own choice (GGUF, MLX)
    tensor_parallel_size: int
    max_model_len: int
    memory_utilization: float
    max_num_batched_tokens: int
    kv_cache_gib: float
    trust_remote_code: bool = False
    api_key: str | None = None
    extra_args: tuple[str, ...] = ()  # from matrix rules and families, then the user's
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Launch:
    argv: tuple[str, ...]  # argv[0] "python" means the environment's interpreter
    env: Mapping[str, str]
    ready_path: str  # GET this until it answers 200


class EngineAdapter(Protocol):
    name: str

    def launch(self, spec: LaunchSpec) -> Launch: ...


@cache
def _registered() -> Mapping[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_for(engine: str) -> EngineAdapter:
    """The adapter registered for ``engine`` (imported on first use)."""
    from importlib import import_module

    target = _registered().get(engine)
    if target is None:
        known = ", ".join(sorted(_registered())) or "none (is envman installed?)"
        raise ConfigError(
            f"no adapter is registered for engine {engine!r}",
            hint=f"registered adapters: {known}; a plugin registers one in the {ENTRY_POINT_GROUP!r} entry-point group",
        )
    module_name, _, attr = target.partition(":")
    adapter: EngineAdapter = getattr(import_module(module_name), attr)()
    return adapter


def common_env(spec: LaunchSpec) -> dict[str, str]:
    return dict(spec.env)
