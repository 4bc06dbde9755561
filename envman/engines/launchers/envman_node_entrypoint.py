"""The entrypoint of a multi-node image (``envman dockerfile MODEL --nodes N``): one image, every rank.

``python -m envman_node_entrypoint SPEC`` takes the JSON that ``envman dockerfile`` wrote into
the image's CMD: the leader's and the worker's commands exactly as ``envman k8s`` puts them
into a LeaderWorkerSet's pods, with the references LeaderWorkerSet injects,
``$(LWS_LEADER_ADDRESS)`` and ``$(LWS_WORKER_INDEX)``. It picks the rank from
``LWS_WORKER_INDEX`` (0: the leader), expands every ``$(NAME)`` from the environment the way the
kubelet expands a container's command (an unset NAME is an error here, not left as text), runs
the rank's setup commands (``ray start --head``) and then becomes the rank's server
(``os.execvp``), so signals reach the engine directly. Outside Kubernetes, set the variables
yourself: ``docker run -e LWS_LEADER_ADDRESS=10.0.0.1 -e LWS_WORKER_INDEX=1 ...``. Standard
library only: it runs in the engine's environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
RANK_VARIABLE = "LWS_WORKER_INDEX"


class Missing(Exception):
    pass


def expand(word: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise Missing(name)
        return env[name]

    return _REFERENCE.sub(value, word)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m envman_node_entrypoint SPEC-JSON", file=sys.stderr)
        return 2
    spec = json.loads(argv[0])
    env = dict(os.environ)
    rank = env.get(RANK_VARIABLE, "")
    if not rank.isdigit() or int(rank) >= int(spec["nodes"]):
        last = int(spec["nodes"]) - 1
        print(
            f"envman: {RANK_VARIABLE}={rank!r}: set it to this node's rank, 0 (the leader) to {last}, "
            "and LWS_LEADER_ADDRESS to the leader's address (a LeaderWorkerSet sets both)",
            file=sys.stderr,
        )
        return 2
    role = spec["leader"] if rank == "0" else spec["worker"]
    for name in role.get("node_env", []):  # this node's own address (vLLM's VLLM_HOST_IP with Ray)
        if not env.get(name):
            print(f"envman: set {name} to this node's address (a pod's status.podIP)", file=sys.stderr)
            return 2
    try:
        setup = [[expand(word, env) for word in command] for command in role["setup"]]
        command = [expand(word, env) for word in role["command"]]
    except Missing as missing:
        print(f"envman: {missing.args[0]} is not set; the rank's command needs it", file=sys.stderr)
        return 2
    for step in (*setup, command):
        if step[0] == "python":  # the environment's interpreter, as envman's launches mean it
            step[0] = sys.executable
    for step in setup:
        done = subprocess.run(step, check=False)
        if done.returncode:
            print(f"envman: {step[0]} failed ({done.returncode})", file=sys.stderr)
            return done.returncode
    os.execvp(command[0], command)  # noqa: S606 (an argv, no shell: the rank's own command)
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
