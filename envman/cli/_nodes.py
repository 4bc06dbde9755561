"""The per-node part of `plan`, `up --dry-run` and `k8s`: each rank's commands, printed or as JSON."""

from __future__ import annotations

import shlex

from rich.console import Console

from envman.engines.base import Launch
from envman.engines.launch import Bindings, NodeLaunch, launch, node_launches, node_launches_json
from envman.plan.result import Plan


def launches(plan: Plan, bindings: Bindings, local: bool = False) -> tuple[Launch, list[NodeLaunch]]:
    """The launch to show as `command` (the leader's on several nodes) and each node's, rank 0 first.

    ``local``: every rank on this host (``up --local-nodes``), the leader at 127.0.0.1.
    """
    if plan.nodes < 2:
        single = launch(plan, bindings)
        return single, []
    if local:  # the run machinery (psutil, the HTTP client) only when ranks start here: plan stays light
        from envman.run.local_nodes import rank_launches

        nodes = rank_launches(plan, bindings)
    else:
        nodes = node_launches(plan, bindings)
    return nodes[0].launch, nodes


def nodes_json(single: Launch, nodes: list[NodeLaunch]) -> dict[str, object]:
    """``node_commands``, ``node_setup`` and ``node_env``: one entry per rank (one for a single node)."""
    if not nodes:
        return {"node_commands": [list(single.argv)], "node_setup": [[]], "node_env": [single.shown_env()]}
    return node_launches_json(nodes)


def render_nodes(plan: Plan, nodes: list[NodeLaunch], console: Console, local: bool = False) -> None:
    if not nodes:
        return
    assert plan.multinode is not None
    where = (
        "all on this host (--local-nodes)"
        if local
        else "run on each node, the leader's address in place of <leader-address>"
    )
    console.print(f"  nodes: {plan.nodes} ({plan.multinode.mechanism.value}); {where}:", markup=False)
    for node in nodes:
        console.print(f"  node {node.rank} ({node.role}):", markup=False)
        shown = node.launch.shown_env()
        if shown:
            console.print("    env: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in shown.items()), markup=False)
        for command in (*node.setup, node.launch.argv):
            console.print("    " + shlex.join(command), markup=False)
