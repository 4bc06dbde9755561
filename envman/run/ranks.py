"""The supervisor of ``up --local-nodes``: every rank of a multi-node plan in one guarded process group.

``python -I -c <bootstrap> JSON`` (started by :mod:`envman.run.guard`, see
:mod:`envman.run.local_nodes`) runs each rank's setup commands, then each rank (workers first,
the leader last), all in the guardian's group, with the group's environment plus the rank's own
``set``/``unset`` variables. It exits as soon as one rank exits, with that rank's status; the
guardian then stops the others. Stop signals reach every rank through the group; this process
only waits. Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys


def _say(text: str) -> None:
    print(f"envman-local-nodes: {text}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    """Run each rank's setup, then every rank (workers first); exit as the first rank exits."""
    if len(argv) != 1:
        _say("usage: python -m envman.run.ranks RANKS-JSON (started by envman up --local-nodes)")
        return 2
    specs = json.loads(argv[0])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # the group's signal reaches every rank; this process waits for them (handlers reset at exec)
        signal.signal(sig, lambda signum, frame: None)
    children: dict[int, str] = {}
    for spec in sorted(specs, key=lambda s: s["rank"] == "0"):  # the leader last: its workers are up
        env = {k: v for k, v in os.environ.items() if k not in spec["unset"]} | spec["set"]
        for command in spec["setup"]:
            done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, check=False)
            if done.returncode:
                _say(f"node {spec['rank']}: {command[0]} failed ({done.returncode})")
                return done.returncode
        try:
            child = subprocess.Popen(spec["argv"], env=env, stdin=subprocess.DEVNULL)
        except OSError as error:
            _say(f"node {spec['rank']}: cannot start {spec['argv'][0]}: {error}")
            return 127
        children[child.pid] = spec["rank"]
        _say(f"node {spec['rank']} started (pid {child.pid})")
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if pid in children:
            code = os.waitstatus_to_exitcode(status)
            _say(f"node {children[pid]} exited ({code}); the other nodes are stopped with it")
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
