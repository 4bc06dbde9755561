"""Process groups, the one mechanism: start a server guarded, find its members, stop them all.

Every engine runs in its own session under :mod:`envman.run.guard`, so signalling the group
reaches every worker it spawns, and the group dies with envman unless it was detached.
Processes and sockets are read through psutil (Linux and macOS alike), never from /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from envman.errors import PrerequisiteError
from envman.files import ensure_dir

DETACH = b"D"  # written to the guardian's pipe: let the group outlive envman
SERVER_MARKER = "ENVMAN_SERVER"  # set in every server's environment: its name, to find it without a record
HOME_MARKER = "ENVMAN_SERVER_HOME"  # and the ENVMAN_HOME it belongs to: another home's servers are not ours


@dataclass
class Spawned:
    """A guarded process group: the guardian leads it; ``pipe`` keeps it tied to envman."""

    process: subprocess.Popen[bytes]
    pipe: int | None  # write end; None once detached

    @property
    def pid(self) -> int:
        return self.process.pid

    def detach(self) -> None:
        """Let the group outlive envman (``up --detach``)."""
        if self.pipe is not None:
            with contextlib.suppress(OSError):
                os.write(self.pipe, DETACH)
            os.close(self.pipe)
            self.pipe = None

    def release(self) -> None:
        """Close the pipe without detaching: the guardian stops the group (used after a stop)."""
        if self.pipe is not None:
            with contextlib.suppress(OSError):
                os.close(self.pipe)
            self.pipe = None


def spawn(
    argv: Sequence[str], env: Mapping[str, str], log_path: Path, *, on_orphan: Sequence[str] | None = None
) -> Spawned:
    """Start ``argv`` in a new session under the guardian, stdout and stderr to ``log_path``.

    ``on_orphan`` runs when envman dies without detaching, before the group is stopped.
    """
    read_end, write_end = os.pipe()
    # -I: the guardian ignores the engine's PYTHONPATH (which the engine keeps) and imports
    # envman from where this envman lives, installed or a checkout
    root = str(Path(__file__).resolve().parents[2])
    bootstrap = (
        f"import sys; sys.path.insert(0, {root!r}); from envman.run.guard import main; sys.exit(main(sys.argv[1:]))"
    )
    orphan = ["--on-orphan", json.dumps(list(on_orphan))] if on_orphan else []
    guard = [sys.executable, "-I", "-c", bootstrap, str(read_end), *orphan, "--", *argv]
    child_env = dict(env)
    ensure_dir(log_path.parent)
    try:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                guard,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                start_new_session=True,  # its own group: signals reach its workers, not ours
                pass_fds=(read_end,),
            )
    except FileNotFoundError:
        os.close(write_end)
        raise PrerequisiteError(f"{argv[0]} is not installed", hint=f"needed to run: {' '.join(argv)}") from None
    finally:
        os.close(read_end)
    return Spawned(process, write_end)


def members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of a process group."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def group_alive(pgid: int) -> bool:
    return bool(members(pgid))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_group(pgid: int, leader: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if leader is not None:
            leader.poll()  # reap the leader, so it does not linger as a zombie member
        if not group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop_group(
    pgid: int,
    leader: subprocess.Popen[bytes] | None = None,
    *,
    interrupt_timeout: float = 10.0,
    terminate_timeout: float = 5.0,
) -> int | None:
    """Stop a process group: SIGINT, wait, SIGTERM, wait, SIGKILL (nox's ``shutdown_process``).

    A second Ctrl-C while waiting kills the group at once. Returns the leader's exit status
    when envman started it (``leader``), else None.
    """
    try:
        for sig, timeout in ((signal.SIGINT, interrupt_timeout), (signal.SIGTERM, terminate_timeout)):
            if not group_alive(pgid):
                break
            _signal_group(pgid, sig)
            if _wait_group(pgid, leader, timeout):
                break
        else:
            _signal_group(pgid, signal.SIGKILL)
    except KeyboardInterrupt:
        _signal_group(pgid, signal.SIGKILL)
        if leader is not None:
            leader.wait()
        raise
    _signal_group(pgid, signal.SIGKILL)  # nothing, unless a member ignored both signals
    code = leader.wait() if leader is not None else None
    _wait_group(pgid, None, 5.0)  # SIGKILLed members vanish shortly
    return code


def start_time(pid: int) -> float | None:
    """When ``pid`` started (seconds since the epoch): with the pid, a process's identity."""
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def is_running(pid: int, started: float | None) -> bool:
    """Whether ``pid`` is alive and is the process that started at ``started`` (not a recycled pid)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 0.01
    except psutil.Error:
        return False


def listening_pids(port: int) -> set[int] | None:
    """Pids with a TCP socket listening on ``port``; None where the table cannot be read."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    return {c.pid for c in connections if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}


def group_listens(pgid: int, port: int) -> bool | None:
    """Whether a member of the group listens on ``port`` (None: cannot tell on this host)."""
    pids = listening_pids(port)
    if pids is None:
        return None
    return any(p.pid in pids for p in members(pgid))


def describe(pid: int) -> str:
    """``pid 1234 (python -m http.server 8000)``."""
    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        command = "?"
    return f"pid {pid} ({command[:120]})"


def home_marker(home: Path | None = None) -> str:
    from envman import paths

    return str((home or paths.home()).expanduser().resolve())


def marked(name: str | None = None, home: Path | None = None) -> dict[str, list[int]]:
    """Process group leaders whose environment names an envman server of ENVMAN_HOME (``name``, or any)."""
    found: dict[str, list[int]] = {}
    wanted_home = home_marker(home)
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) != process.pid:
                continue  # only group leaders: a server is its group
            environ = process.environ()
            value = environ.get(SERVER_MARKER)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
        if value and environ.get(HOME_MARKER) == wanted_home and (name is None or value == name):
            found.setdefault(value, []).append(process.pid)
    return found
