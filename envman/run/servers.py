"""Servers started with ``envman up --detach``: a record each, so ``ps`` and ``down`` find them.

A record lives in ``$ENVMAN_HOME/servers/<name>.json``. A server is "running" only while
its process exists and is the same process (its start time in /proc matches the record:
a recycled pid is not mistaken for it); otherwise it is shown as "dead".
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from envman import paths
from envman.errors import UsageError
from envman.files import atomic_write

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def servers_dir() -> Path:
    return paths.home() / "servers"


def logs_dir() -> Path:
    return paths.home() / "logs"


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


@dataclass(frozen=True)
class ServerRecord:
    name: str
    model: str
    engine: str
    engine_version: str
    variant: str
    url: str
    host: str
    port: int
    pid: int
    pid_start: int | None
    started: float  # epoch seconds
    log: str
    command: list[str]
    container: str | None = None  # `envman up --docker`: the container's name

    def alive(self) -> bool:
        if self.container:
            from envman.docker.container import find

            found = find(self.container)
            return found is not None and found.status == "running"
        ticks = start_ticks(self.pid)
        if ticks is None:
            return False
        state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z" and (self.pid_start is None or ticks == self.pid_start)

    def to_json(self) -> dict[str, Any]:
        alive = self.alive()
        return {
            "name": self.name,
            "model": self.model,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "variant": self.variant,
            "url": self.url,
            "pid": self.pid or None,
            "container": self.container,
            "status": "running" if alive else "dead",
            "uptime_seconds": round(time.time() - self.started) if alive else None,
            "log": self.log,
        }


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"{name!r} is not a server name", hint="use letters, digits, '.', '_' and '-' (at most 64)")
    return name


def save(record: ServerRecord) -> Path:
    directory = servers_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{record.name}.json"
    atomic_write(target, json.dumps(asdict(record), indent=2) + "\n")
    return target


def load(name: str) -> ServerRecord | None:
    path = servers_dir() / f"{name}.json"
    try:
        return ServerRecord(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)  # a record we cannot read is no record
        return None


def all_records() -> list[ServerRecord]:
    directory = servers_dir()
    if not directory.is_dir():
        return []
    records = [load(p.stem) for p in sorted(directory.glob("*.json"))]
    return [r for r in records if r is not None]


def forget(name: str) -> None:
    (servers_dir() / f"{name}.json").unlink(missing_ok=True)


def stop(record: ServerRecord, interrupt_timeout: float = 10.0, terminate_timeout: float = 5.0) -> bool:
    """Stop a detached server's whole process group (interrupt, terminate, kill); forget it."""
    from envman.run.server import group_members

    if record.container:
        from envman.docker.container import find, stop_and_remove

        found = find(record.container)
        running = found is not None and found.status == "running"
        if found is not None:
            stop_and_remove(found, int(interrupt_timeout))
        forget(record.name)
        return running
    stopped = False
    if record.alive():
        pgid = record.pid  # started in its own session: the leader's pid is the group id
        for sig, wait in (
            (signal.SIGINT, interrupt_timeout),
            (signal.SIGTERM, terminate_timeout),
            (signal.SIGKILL, 5.0),
        ):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and (group_members(pgid) or []):
                time.sleep(0.05)
            if not (group_members(pgid) or []):
                break
        stopped = True
    forget(record.name)
    return stopped
