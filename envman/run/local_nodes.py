"""Every rank of a multi-node plan on this host (``envman up --nodes N --local-nodes``), as one server.

A multi-node launch is tested here the way it runs on N machines: each rank's own command
(``node_commands``, what ``--dry-run`` prints and ``envman k8s`` puts in the pods), with
127.0.0.1 as the leader's address. The ranks are not N servers but one: the guardian
(:mod:`envman.run.guard`) leads one process group in which a small supervisor starts
every rank (:mod:`envman.run.ranks`) and exits as soon as one of them does, so the guardian stops the rest. Ctrl-C,
SIGTERM, ``envman down`` and envman's death therefore stop every rank, like any engine's
workers; ``ps`` lists one server; readiness is the leader's port, answered from the group.

Secrets never reach argv: the group's environment is the leader's (its API key included), and
each rank's argv names only what differs for that rank (non-secret variables), as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from envman.engines.base import Launch
from envman.engines.launch import LOOPBACK, Bindings, NodeLaunch, node_launches
from envman.errors import UsageError
from envman.matrix.schema import NodeMechanism
from envman.plan.result import Plan
from envman.report import NullReporter, Reporter
from envman.run.server import Server, ServerCommand, command_for, start_owned

# Run by the guardian with envman's interpreter (-I, like the guardian itself).
_BOOTSTRAP = "import sys; sys.path.insert(0, {root!r}); from envman.run.ranks import main; sys.exit(main(sys.argv[1:]))"


def rank_launches(plan: Plan, bindings: Bindings) -> list[NodeLaunch]:
    """Each rank's launch with this host as the leader's (and every node's) address."""
    if plan.multinode is not None and plan.multinode.mechanism is NodeMechanism.RAY:
        raise UsageError(
            f"--local-nodes does not start a Ray cluster: {plan.engine} {plan.engine_version} splits "
            f"{plan.model.name} over nodes only with Ray here, and envman's lock does not add ray",
            hint="choose a release with another mechanism (vLLM >= 0.11.1: --nnodes/--node-rank), "
            "or run the --dry-run commands by hand",
        )
    return node_launches(plan, bindings, leader_address=LOOPBACK, node_address=LOOPBACK)


def supervisor_command(ranks: list[NodeLaunch], python: Path, name: str | None) -> ServerCommand:
    """One command that runs every rank: the leader's environment, the ranks' argv as JSON."""
    leader = command_for(ranks[0].launch, python, name)
    specs = []
    for rank in ranks:
        made = command_for(rank.launch, python, name)
        changed = {k: v for k, v in made.env.items() if leader.env.get(k) != v}
        secret = sorted(k for k in changed if k in rank.launch.secret_env or k in leader.secret_env)
        if secret:  # every rank of a plan carries the same key: nothing secret differs
            raise ValueError(f"rank {rank.rank} would carry {', '.join(secret)} on argv")
        setup = [list(command_for(Launch(argv=c, env={}, ready_path=""), python).argv) for c in rank.setup]
        specs.append(
            {
                "rank": rank.rank,
                "setup": setup,
                "argv": list(made.argv),
                "set": changed,
                "unset": sorted(k for k in leader.env if k not in made.env),
            }
        )
    root = str(Path(__file__).resolve().parents[2])
    argv = (sys.executable, "-I", "-c", _BOOTSTRAP.format(root=root), json.dumps(specs))
    return ServerCommand(
        argv, leader.env, leader.url_root, leader.ready_path, leader.served_model_name, leader.secret_env
    )


@dataclass
class LocalNodes:
    """``up``'s starter for ``--local-nodes``: every rank under one guardian, ready when the leader is."""

    ranks: list[NodeLaunch]

    @property
    def launch(self) -> Launch:
        return self.ranks[0].launch

    def start_in(
        self,
        python: Path,
        name: str | None,
        log_path: Path,
        owned: list[Server],
        timeout: float,
        reporter: Reporter | None = None,
    ) -> Server:
        reporter = reporter or NullReporter()
        command = supervisor_command(self.ranks, python, name)
        reporter.info(f"{len(self.ranks)} ranks on this host, leader at {self.launch.url_root}")
        started: list[Server] = []
        try:
            return start_owned(command, log_path, started, reporter)  # type: ignore[arg-type]
        finally:
            owned.extend(started)


def starter_for(plan: Plan, bindings: Bindings) -> object:
    """``up``'s starter (given the built environment): the ranks of ``plan`` on this host."""
    ranks = rank_launches(plan, bindings)  # refuses what cannot run here, before anything is built

    def make(built: object) -> LocalNodes:
        return LocalNodes(ranks)

    return make
