"""The servers envman runs: one record each, names claimed atomically, found even without a record.

A record lives in ``$ENVMAN_HOME/servers/<name>.json``. A name is claimed under a file lock
(``.<name>.lock``) held from before the engine starts until its record is written (for the
whole run of a foreground server), so two ``up --name X`` never both succeed. A server is
"running" only while its process exists and is the same process (its start time matches the
record: a recycled pid is not mistaken for it). A record that cannot be read is never
deleted: it is moved aside (``<name>.json.unreadable-<time>``) and reported, and the server
is still found by the marker every envman server carries in its environment
(``ENVMAN_SERVER=<name>``).

How a record's server is checked and stopped depends on what runs it (a local process group,
a container): a :class:`Backend` per ``record.backend``, given by the caller.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from envman import paths
from envman.errors import UsageError
from envman.files import atomic_write, unusable
from envman.run import process

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PROCESS = "process"


def servers_dir() -> Path:
    return paths.home() / "servers"


def logs_dir() -> Path:
    return paths.home() / "logs"


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
    pid: int  # the process group's leader (0 for a container)
    pid_start: float | None  # the leader's start time (epoch seconds): its identity with the pid
    started: float  # epoch seconds
    log: str
    command: list[str]
    container: str | None = None  # `envman up --docker`: the container's name
    backend: str = PROCESS
    foreground: bool = False  # an `envman up` in a terminal owns it (owner_pid)
    owner_pid: int | None = None

    def to_json(self, alive: bool) -> dict[str, Any]:
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
            "foreground": self.foreground,
            "uptime_seconds": round(time.time() - self.started) if alive else None,
            "log": self.log,
        }


_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "model": (str,),
    "engine": (str,),
    "engine_version": (str,),
    "variant": (str,),
    "url": (str,),
    "host": (str,),
    "port": (int,),
    "pid": (int,),
    "pid_start": (float, int, type(None)),
    "started": (float, int),
    "log": (str,),
    "command": (list,),
    "container": (str, type(None)),
    "backend": (str,),
    "foreground": (bool,),
    "owner_pid": (int, type(None)),
}


class Backend(Protocol):
    """How a record's server is checked and stopped."""

    def alive(self, record: ServerRecord) -> bool: ...

    def stop(self, record: ServerRecord, interrupt_timeout: float, terminate_timeout: float) -> bool: ...


class ProcessBackend:
    """A local process group, led by the guardian whose pid the record keeps."""

    def alive(self, record: ServerRecord) -> bool:
        return record.pid > 0 and process.is_running(record.pid, record.pid_start)

    def stop(self, record: ServerRecord, interrupt_timeout: float = 10.0, terminate_timeout: float = 5.0) -> bool:
        if not self.alive(record):
            return False
        process.stop_group(record.pid, interrupt_timeout=interrupt_timeout, terminate_timeout=terminate_timeout)
        return True


@dataclass(frozen=True)
class Unreadable:
    """A record that could not be read: where it was moved, and why."""

    name: str
    moved_to: Path
    reason: str


@dataclass(frozen=True)
class Untracked:
    """A server found by its environment marker, with no readable record."""

    name: str
    pids: tuple[int, ...]


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"{name!r} is not a server name", hint="use letters, digits, '.', '_' and '-' (at most 64)")
    return name


def _parse(data: Any) -> ServerRecord:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    known = {f.name for f in fields(ServerRecord)}
    values = {k: v for k, v in data.items() if k in known}
    for key, kinds in _TYPES.items():
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, bool) and bool not in kinds:
            raise ValueError(f"{key}: {value!r} is not {kinds[0].__name__}")
        if not isinstance(value, kinds):
            raise ValueError(f"{key}: {value!r} is not {kinds[0].__name__}")
    if "command" in values and not all(isinstance(a, str) for a in values["command"]):
        raise ValueError("command: not a list of strings")
    try:
        return ServerRecord(**values)
    except TypeError as error:  # a required field is missing
        raise ValueError(str(error)) from None


def _set_aside(path: Path, reason: str) -> Unreadable:
    moved = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    with contextlib.suppress(OSError):
        os.replace(path, moved)
    return Unreadable(path.stem, moved, reason)


def read(name: str) -> ServerRecord | Unreadable | None:
    """The record of ``name``; an unreadable one is moved aside and reported, never deleted."""
    path = servers_dir() / f"{name}.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise unusable(path, error, "read") from None
    try:
        return _parse(json.loads(text))
    except (ValueError, UnicodeDecodeError) as error:
        return _set_aside(path, f"{type(error).__name__}: {error}" if str(error) else "empty")


def load(name: str) -> ServerRecord | None:
    found = read(name)
    return found if isinstance(found, ServerRecord) else None


@dataclass
class Listing:
    records: list[ServerRecord] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    untracked: list[Untracked] = field(default_factory=list)


def listing() -> Listing:
    """Every record, the unreadable ones (moved aside now or before), and marked servers without a record."""
    result = Listing()
    directory = servers_dir()
    if directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            found = read(path.stem)
            if isinstance(found, ServerRecord):
                result.records.append(found)
            elif isinstance(found, Unreadable):
                result.unreadable.append(found)
        for path in sorted(directory.glob("*.json.unreadable-*")):
            if not any(u.moved_to == path for u in result.unreadable):
                result.unreadable.append(Unreadable(path.name.split(".json")[0], path, "set aside earlier"))
    tracked = {r.name for r in result.records if r.backend == PROCESS}
    for name, pids in sorted(process.marked().items()):
        if name not in tracked:
            result.untracked.append(Untracked(name, tuple(pids)))
    return result


def save(record: ServerRecord) -> Path:
    return atomic_write(servers_dir() / f"{record.name}.json", json.dumps(asdict(record), indent=2) + "\n")


def forget(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (servers_dir() / f"{name}.json").unlink()


@contextlib.contextmanager
def claim(name: str, backends: Mapping[str, Backend]) -> Iterator[None]:
    """Hold ``name`` while a server of that name starts (and, in the foreground, runs).

    Fails at once (exit 2) when another envman holds the name, when a live server has it,
    or when an untracked server carries it; fails with exit 3 when the state folder is
    unusable — before anything is started.
    """
    check_name(name)
    directory = paths.state_dir("servers")  # exit 3 naming the folder when it is unusable
    lock = FileLock(str(directory / f".{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(
            f"a server named {name!r} is being started by another envman", hint="wait for it, or pass another --name"
        ) from None
    except OSError as error:
        raise unusable(directory / f".{name}.lock", error) from None
    try:
        existing = read(name)
        if isinstance(existing, ServerRecord):
            if backends[existing.backend].alive(existing):
                raise UsageError(f"a server named {name!r} is running", hint=f"`envman down {name}` it, or pass --name")
            forget(name)  # a dead server's record: the name is free again
        if existing is None or isinstance(existing, Unreadable) or existing.backend == PROCESS:
            pids = process.marked(name).get(name)
            if pids:
                raise UsageError(
                    f"a server named {name!r} runs without a readable record ({process.describe(pids[0])})",
                    hint=f"`envman down {name}` stops it",
                )
        yield
    finally:
        lock.release()


def stop(record: ServerRecord, backends: Mapping[str, Backend], interrupt_timeout: float = 10.0) -> bool:
    """Stop a server (interrupt, terminate, kill its whole group, or its container); forget it."""
    backend = backends.get(record.backend)
    if backend is None:
        raise UsageError(f"{record.name}: unknown backend {record.backend!r} in its record")
    was_running = backend.stop(record, interrupt_timeout, 5.0)
    forget(record.name)
    return was_running


def stop_untracked(found: Untracked, interrupt_timeout: float = 10.0) -> None:
    for pid in found.pids:
        process.stop_group(pid, interrupt_timeout=interrupt_timeout)


def log_path(name: str) -> Path:
    """A new log file for server ``name``: unique even for two starts in the same second."""
    directory = paths.state_dir("logs")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        candidate = directory / (f"{name}-{stamp}-{os.getpid()}" + (f"-{n}" if n else "") + ".log")
        try:
            fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue
        except OSError as error:
            raise unusable(candidate, error) from None
        os.close(fd)
        return candidate
    raise unusable(directory, FileExistsError(17, "no free log file name"))
