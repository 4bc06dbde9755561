"""The launch step: a plan plus runtime bindings become the engine's argv and environment.

The plan decides (engine, version, variant, format, dtype, parallelism, memory); it knows
nothing of where the weights lie, which address the server binds or which key it checks.
Those are :class:`Bindings`, known only when something is about to run (a local process, a
container, a Dockerfile's CMD, a CI job). :func:`launch` asks the engine's adapter to turn
both into a :class:`~envman.engines.base.Launch`; nothing plans twice to change a path.
"""

from __future__ import annotations

from dataclasses import dataclass

from envman.engines.base import Launch, LaunchSpec, adapter_for, refuse_key
from envman.hardware.host import GIB
from envman.matrix.schema import Format
from envman.plan.result import Plan

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8000


@dataclass(frozen=True)
class Bindings:
    """Where and how one launch of a plan runs."""

    weights: str | None = None  # local path, or a hub repo id the engine downloads; None: the plan's artifact
    host: str = LOOPBACK
    port: int = DEFAULT_PORT
    served_model_name: str | None = None  # None: the model's name
    api_key: str | None = None
    extra_args: tuple[str, ...] = ()  # the user's, after `--`


def default_weights(plan: Plan) -> str:
    """The plan's artifact as the engine names it: a repo id, or ``repo/file`` for one GGUF file."""
    artifact = plan.artifact
    if artifact.format is Format.GGUF and artifact.file:
        return f"{artifact.repo}/{artifact.file}"
    return artifact.repo


def client_host(host: str) -> str:
    """The address a local client uses for a server bound to ``host``.

    A server bound to every interface is reached through the IPv4 loopback (not
    "localhost", which may resolve to ::1 first); IPv6 literals are bracketed.
    """
    if host in ("0.0.0.0", "localhost", ""):  # noqa: S104 (a comparison, not a bind)
        return LOOPBACK
    if ":" in host:
        return f"[{host}]"
    return host


def url_root(host: str, port: int) -> str:
    return f"http://{client_host(host)}:{port}"


def served_name(plan: Plan, bindings: Bindings) -> str:
    return bindings.served_model_name or plan.model.name


def launch(plan: Plan, bindings: Bindings) -> Launch:
    """The engine's argv and environment for ``plan`` bound to ``bindings``."""
    spec = LaunchSpec(
        model_path=bindings.weights or default_weights(plan),
        served_model_name=served_name(plan, bindings),
        host=bindings.host,
        port=bindings.port,
        accelerator=plan.host.accelerator,
        dtype=plan.dtype,
        tensor_parallel_size=plan.tensor_parallel_size,
        max_model_len=plan.max_model_len,
        memory_utilization=plan.memory_utilization,
        max_num_batched_tokens=plan.max_num_batched_tokens,
        kv_cache_gib=plan.memory.kv_cache_bytes / GIB,
        trust_remote_code=plan.trust_remote_code,
        api_key=bindings.api_key,
        extra_args=(*plan.engine_args, *bindings.extra_args),
        env=plan.engine_env,
    )
    adapter = adapter_for(plan.engine)
    if not getattr(adapter, "checks_api_key", True):
        refuse_key(plan.engine, spec)
    made = adapter.launch(spec)
    return Launch(
        argv=made.argv,
        env=made.env,
        ready_path=made.ready_path,
        secret_env=made.secret_env,
        url_root=url_root(bindings.host, bindings.port),
        served_model_name=spec.served_model_name,
    )
