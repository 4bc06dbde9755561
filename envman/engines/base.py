"""The adapter interface and the registry that finds adapters by engine name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from envman.errors import ConfigError, UsageError
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
    """An engine's server command for one plan and one set of bindings."""

    argv: tuple[str, ...]  # argv[0] "python" means the environment's interpreter
    env: Mapping[str, str]
    ready_path: str  # GET this until it answers 200
    secret_env: frozenset[str] = frozenset()  # variables of ``env`` that hold a secret (never printed)
    url_root: str = ""  # http://HOST:PORT, as a local client reaches it (set by envman.engines.launch)
    served_model_name: str = ""

    @property
    def url(self) -> str:
        """The OpenAI API root."""
        return self.url_root + "/v1"

    @property
    def ready_url(self) -> str:
        return self.url_root + self.ready_path

    def shown_env(self) -> dict[str, str]:
        """The environment as it may be printed or logged: secrets masked."""
        return {k: ("***" if k in self.secret_env else v) for k, v in self.env.items()}

    def to_json(self) -> dict[str, object]:
        """What may be printed: argv, the masked environment, the URL and the served name."""
        return {
            "command": list(self.argv),
            "env": self.shown_env(),
            "url": self.url,
            "served_model_name": self.served_model_name,
            "ready_path": self.ready_path,
        }


SECRET_KEY_VARIABLE = "ENVMAN_API_KEY"  # noqa: S105 (the variable's name, not a key)


def key_off_argv(
    program: list[str],
    args: list[str],
    spec: LaunchSpec,
    flag: str,
    *,
    module: str | None = None,
    script: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """argv and env for a server that takes its API key only as the option ``flag``.

    Without a key: ``program + args``. With one: the ``envman_secret_args`` launcher runs the
    engine's ``module`` (or console ``script``) in-process and appends ``flag KEY`` to its
    ``sys.argv`` from the environment, so the key is never on the command line.
    """
    env = dict(spec.env)
    if not spec.api_key:
        return program + args, env
    target = ["--module", module] if module else ["--script", script or ""]
    env[SECRET_KEY_VARIABLE] = spec.api_key
    return ["python", "-m", "envman_secret_args", "--flag", flag, *target, "--", *args], env


def refuse_key(engine: str, spec: LaunchSpec) -> None:
    """An engine whose server cannot check a key: refuse ``--api-key`` rather than serve unprotected."""
    if spec.api_key:
        raise UsageError(
            f"{engine}'s server cannot check an API key: `--api-key` would leave it open",
            hint="put an authenticating reverse proxy in front of it, or choose an engine that checks keys "
            "(--engine vllm, xllamacpp, sglang, lmdeploy)",
        )


class EngineAdapter(Protocol):
    name: str
    # an adapter whose server cannot check an API key sets ``checks_api_key = False``: the
    # launch step then refuses --api-key (exit 2) instead of serving without authentication

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
