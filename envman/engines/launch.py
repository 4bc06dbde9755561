"""The launch step: a plan plus runtime bindings become the engine's argv and environment.

The plan decides (engine, version, variant, format, dtype, parallelism, memory); it knows
nothing of where the weights lie, which address the server binds or which key it checks.
Those are :class:`Bindings`, known only when something is about to run (a local process, a
container, a Dockerfile's CMD, a CI job). :func:`launch` asks the engine's adapter to turn
both into a :class:`~envman.engines.base.Launch`; nothing plans twice to change a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from envman.engines.base import Launch, LaunchSpec, adapter_for, refuse_key
from envman.errors import ConfigError, UsageError
from envman.hardware.host import GIB
from envman.matrix.schema import Format, NodeMechanism
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
    network_interface: str | None = None  # several nodes: the interface their traffic uses (NCCL_SOCKET_IFNAME …)


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


def _spec(plan: Plan, bindings: Bindings) -> LaunchSpec:
    return LaunchSpec(
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


def launch(plan: Plan, bindings: Bindings) -> Launch:
    """The engine's argv and environment for ``plan`` bound to ``bindings``."""
    spec = _spec(plan, bindings)
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


# -- several nodes ------------------------------------------------------------------------

LEADER_PLACEHOLDER = "<leader-address>"  # printed where the leader's address is not known yet
# What a LeaderWorkerSet injects into each pod, as references the kubelet expands in a command
# (and envman's multi-node image entrypoint, envman_node_entrypoint, outside Kubernetes).
LWS_LEADER_ADDRESS = "$(LWS_LEADER_ADDRESS)"
LWS_WORKER_INDEX = "$(LWS_WORKER_INDEX)"
NODE_ADDRESS_PLACEHOLDER = "<this-node-address>"


@dataclass(frozen=True)
class NodeSpec:
    """One node's part in a multi-node plan, as the adapter needs it for that node's argv."""

    nodes: int
    rank: str  # "0", "1" … or a reference the runtime expands ("$(LWS_WORKER_INDEX)" in a manifest)
    leader_address: str
    mechanism: NodeMechanism
    pipeline_parallel_size: int
    data_parallel_size: int
    expert_parallel: bool
    node_address: str | None = None  # this node's own address, for engines that document a variable for it

    @property
    def leader(self) -> bool:
        return self.rank == "0"


@dataclass(frozen=True)
class NodeLaunch:
    """What one node runs: ``setup`` commands first (``ray start --head``), then ``launch``."""

    rank: str
    setup: tuple[tuple[str, ...], ...]
    launch: Launch
    requires: Mapping[str, object] = field(default_factory=dict)  # the plan's host stack, and this node's GPUs

    @property
    def role(self) -> str:
        return "leader" if self.rank == "0" else "worker"

    def to_json(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "role": self.role,
            "setup": [list(command) for command in self.setup],
            "command": list(self.launch.argv),
            "env": self.launch.shown_env(),
            "requires": dict(self.requires),
        }


class NodeAdapter(Protocol):
    def node_launch(self, spec: LaunchSpec, node: NodeSpec) -> tuple[tuple[tuple[str, ...], ...], Launch]: ...


def node_launches(
    plan: Plan,
    bindings: Bindings,
    leader_address: str = LEADER_PLACEHOLDER,
    ranks: Sequence[str] | None = None,
    node_address: str | None = None,
) -> list[NodeLaunch]:
    """Each node's commands for a multi-node ``plan``: rank 0 (the leader, which serves) first.

    ``ranks`` picks which ranks to render (a manifest renders "0" and one worker template whose
    rank the runtime fills in); ``node_address`` is this node's address where the engine
    documents a variable for it (vLLM's VLLM_HOST_IP with Ray).
    """
    mechanism = plan.multinode
    if mechanism is None or plan.nodes < 2:
        raise UsageError(
            f"the plan for {plan.model.name} uses one node: there are no per-node commands",
            hint="plan with --nodes N for a model that needs more than one node",
        )
    interface = _interface(plan, bindings.network_interface)
    adapter = adapter_for(plan.engine)
    if not hasattr(adapter, "node_launch"):
        raise ConfigError(f"the {plan.engine} adapter cannot launch over several nodes")
    node_adapter: NodeAdapter = adapter  # type: ignore[assignment]  # checked just above
    spec = _spec(plan, bindings)
    if not getattr(adapter, "checks_api_key", True):
        refuse_key(plan.engine, spec)
    # every node runs the same build: the same host stack, and the GPUs of one node
    requires = {**dict(plan.requires), "gpus": len(plan.host.gpus)}
    out = []
    for rank in ranks if ranks is not None else [str(r) for r in range(plan.nodes)]:
        node = NodeSpec(
            nodes=plan.nodes,
            rank=rank,
            leader_address=leader_address,
            mechanism=mechanism.mechanism,
            pipeline_parallel_size=plan.pipeline_parallel_size,
            data_parallel_size=plan.data_parallel_size,
            expert_parallel=plan.expert_parallel,
            node_address=node_address
            if node_address is not None
            else (NODE_ADDRESS_PLACEHOLDER if mechanism.node_env else None),
        )
        setup, made = node_adapter.node_launch(spec, node)
        env = dict(made.env)
        for name in mechanism.node_env:
            env.setdefault(name, node.node_address or NODE_ADDRESS_PLACEHOLDER)
        if interface:
            env.update(dict.fromkeys(mechanism.interface_env, interface))
        served = node.leader
        made = Launch(
            argv=made.argv,
            env=env,
            ready_path=made.ready_path if served else "",
            secret_env=made.secret_env,
            url_root=url_root(bindings.host, bindings.port) if served else "",
            served_model_name=spec.served_model_name if served else "",
        )
        out.append(NodeLaunch(rank=rank, setup=setup, launch=made, requires=requires))
    return out


_INTERFACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}\Z")  # a Linux interface name (IFNAMSIZ 16)


def _interface(plan: Plan, name: str | None) -> str | None:
    """``--network-interface``, checked: a plain interface name, for a release that documents the variables."""
    if name is None:
        return None
    if not _INTERFACE.match(name):
        raise UsageError(
            f"--network-interface {name!r} is not a network interface name",
            hint="the interface the nodes reach each other through, as `ip link` names it (eth0, ens5, ib0)",
        )
    assert plan.multinode is not None
    if not plan.multinode.interface_env:
        raise UsageError(
            f"{plan.engine} {plan.engine_version} documents no network-interface variable for "
            f"{plan.multinode.mechanism.value} in matrix.toml: --network-interface would do nothing"
        )
    return name


def node_launches_json(launches: Sequence[NodeLaunch]) -> dict[str, object]:
    """The per-node part of plan JSON: ``node_commands`` (one argv per rank), setup lines, env."""
    return {
        "node_commands": [list(n.launch.argv) for n in launches],
        "node_setup": [[list(c) for c in n.setup] for n in launches],
        "node_env": [n.launch.shown_env() for n in launches],
        "node_requires": [dict(n.requires) for n in launches],
    }
