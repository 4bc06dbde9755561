"""An engine's server process: started in its own process group, awaited, stopped with its group.

``serve()`` is a context manager: it starts the command with its output in a log file, polls
the readiness URL until it answers 200 (and fails at once, with the log's tail, if the
process exits first), and on leaving, whatever the reason (an error, Ctrl-C), stops the
whole process group: interrupt, wait, terminate, wait, kill (nox's ``shutdown_process``).
Engines spawn workers (vLLM's engine core, llama.cpp's threads); signalling the group reaches
every one of them, so nothing is left holding the port or the memory.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envman import proc
from envman.errors import PrerequisiteError, TargetError
from envman.report import NullReporter, Reporter
from envman.run import ports

# Where the launcher modules that engines without a console script run (`python -m ...`) live.
LAUNCHERS = Path(__file__).resolve().parent.parent / "engines" / "launchers"
LOOPBACK = "127.0.0.1"
# Environment variables of envman's own interpreter that must not leak into an engine's.
_DROP = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "__PYVENV_LAUNCHER__")


# Ports are envman.run.ports' business; re-exported for the callers of this module.
free_port = ports.free_port
port_is_free = ports.is_free


@dataclass(frozen=True)
class ServerCommand:
    """What to run and how to tell it is ready."""

    argv: tuple[str, ...]
    env: Mapping[str, str]  # the whole child environment
    url_root: str  # http://127.0.0.1:PORT
    ready_path: str = "/health"

    @property
    def ready_url(self) -> str:
        return self.url_root + self.ready_path

    @property
    def base_url(self) -> str:
        """The OpenAI API root."""
        return self.url_root + "/v1"


def url_root(url: str) -> str:
    """``http://localhost:8000/v1`` → ``http://127.0.0.1:8000`` (a loopback server may not listen on ::1)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or LOOPBACK
    if host in ("localhost", "0.0.0.0"):  # noqa: S104 (a comparison, not a bind)
        host = LOOPBACK
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or 'http'}://{host}{port}"


def command_for(argv: Sequence[str], env: Mapping[str, str], python: Path, url: str, ready_path: str) -> ServerCommand:
    """A planned launch made concrete for one environment.

    ``argv[0] == "python"`` becomes the environment's interpreter and a console script
    found in the environment's ``bin`` is run from there; the child gets a clean copy of
    this environment (none of envman's Python variables), the environment's ``bin`` first
    on PATH, the launcher modules on PYTHONPATH, and the plan's variables on top.
    """
    bin_dir = python.parent
    first = argv[0]
    if first == "python":
        first = str(python)
    elif "/" not in first and (bin_dir / first).exists():
        first = str(bin_dir / first)
    child = proc.child_env(drop=_DROP)
    child["PATH"] = os.pathsep.join([str(bin_dir), child.get("PATH", os.defpath)])
    child["VIRTUAL_ENV"] = str(bin_dir.parent)
    child["PYTHONPATH"] = str(LAUNCHERS)
    child["PYTHONUNBUFFERED"] = "1"  # the log is read while the server runs, and after a crash
    child.update(env)
    return ServerCommand((first, *argv[1:]), child, url_root(url), ready_path)


class StartupError(TargetError):
    """The server exited, or did not become ready in time, while starting."""

    def __init__(self, reason: str, *, log_tail: str, log: str, returncode: int | None, hint: str | None) -> None:
        super().__init__(f"{reason}:\n{log_tail}" if log_tail else reason, hint)
        self.reason = reason
        self.log = log
        self.returncode = returncode


@dataclass
class Server:
    """A started server process (the leader of its own process group)."""

    command: ServerCommand
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    ready_seconds: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url_root(self) -> str:
        return self.command.url_root

    @property
    def base_url(self) -> str:
        return self.command.base_url

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().rstrip().splitlines()[-lines:])

    def wait_ready(self, timeout: float, poll: float = 0.05) -> float:
        """Poll the readiness URL until it answers 200; seconds from start to ready.

        Raises :class:`StartupError` as soon as the process exits, or when ``timeout`` passes.
        """
        deadline = self.started + timeout
        delay = poll
        while True:
            code = self.process.poll()
            if code is not None:
                raise StartupError(
                    f"the server exited during start-up ({describe_exit(code)})",
                    log_tail=self.log_tail(),
                    log=self.log(),
                    returncode=code,
                    hint=f"full log: {self.log_path}",
                )
            if _answers_200(self.command.ready_url, timeout=min(2.0, max(0.1, deadline - time.monotonic()))):
                self.ready_seconds = time.monotonic() - self.started
                return self.ready_seconds
            if time.monotonic() >= deadline:
                raise StartupError(
                    f"the server was not ready after {timeout:g}s ({self.command.ready_url} did not answer 200)",
                    log_tail=self.log_tail(),
                    log=self.log(),
                    returncode=None,
                    hint=f"a bigger --timeout may help; full log: {self.log_path}",
                )
            time.sleep(delay)
            if time.monotonic() - self.started > 2.0:  # quick engines are seen at once; slow ones polled less
                delay = min(0.5, delay * 1.5)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _answers_200(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our own http URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):  # refused, 503 while loading, reset, timeout
        return False


def start(command: ServerCommand, log_path: Path, reporter: Reporter | None = None) -> Server:
    """Start the server in a new session (its own process group), output to ``log_path``."""
    reporter = reporter or NullReporter()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    reporter.detail(f"$ {shlex.join(command.argv)}  > {log_path}")
    with log_path.open("wb") as log:
        try:
            process = subprocess.Popen(
                list(command.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(command.env),
                start_new_session=True,  # its own group: signals reach its workers, not ours
            )
        except FileNotFoundError:
            raise PrerequisiteError(
                f"{command.argv[0]} is not installed", hint=f"needed to run: {shlex.join(command.argv)}"
            ) from None
    return Server(command, process, log_path)


def group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) processes of a process group, from /proc; None where there is no /proc."""
    proc_dir = Path("/proc")
    if not (proc_dir / "self" / "stat").exists():
        return None
    members = []
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    members = group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)  # counts zombies too, but needs no /proc
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal still exists
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_group(process: subprocess.Popen[bytes], pgid: int, timeout: float) -> bool:
    """Wait until the leader and every other member of its group are gone."""
    deadline = time.monotonic() + timeout
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def shutdown(process: subprocess.Popen[bytes], interrupt_timeout: float = 10.0, terminate_timeout: float = 5.0) -> int:
    """Stop a process group leader and its group: SIGINT, wait, SIGTERM, wait, SIGKILL.

    A second Ctrl-C while waiting kills the group at once. Returns the leader's exit status.
    """
    pgid = process.pid  # start_new_session=True: the leader's pid is the group id
    try:
        for sig, timeout in ((signal.SIGINT, interrupt_timeout), (signal.SIGTERM, terminate_timeout)):
            if not _group_alive(pgid) and process.poll() is not None:
                break
            _signal_group(pgid, sig)
            if _wait_group(process, pgid, timeout):
                break
        else:
            _signal_group(pgid, signal.SIGKILL)
    except KeyboardInterrupt:
        _signal_group(pgid, signal.SIGKILL)
        process.wait()
        raise
    _signal_group(pgid, signal.SIGKILL)  # nothing, unless a member ignored both signals
    code = process.wait()
    deadline = time.monotonic() + 5.0
    while _group_alive(pgid) and time.monotonic() < deadline:  # SIGKILLed members vanish shortly
        time.sleep(0.02)
    return code


class _Follower(threading.Thread):
    """Copies lines appended to the log to a callback (``-v`` shows the engine's output live)."""

    def __init__(self, path: Path, on_line: Callable[[str], None]) -> None:
        super().__init__(name="server-log", daemon=True)
        self.path = path
        self.on_line = on_line
        self.done = threading.Event()

    def run(self) -> None:
        with self.path.open("r", encoding="utf-8", errors="replace") as log:
            pending = ""
            while True:
                chunk = log.readline()
                if chunk:
                    pending += chunk
                    if pending.endswith("\n"):
                        self.on_line(pending.rstrip("\n"))
                        pending = ""
                    continue
                if self.done.is_set():
                    if pending:
                        self.on_line(pending)
                    return
                time.sleep(0.1)


@contextlib.contextmanager
def serve(
    command: ServerCommand,
    log_path: Path,
    *,
    timeout: float,
    reporter: Reporter | None = None,
    on_line: Callable[[str], None] | None = None,
    interrupt_timeout: float = 10.0,
    terminate_timeout: float = 5.0,
) -> Iterator[Server]:
    """Start the server, wait until it is ready, yield it; stop it and its group on the way out."""
    reporter = reporter or NullReporter()
    owned: list[Server] = []
    follower = None
    try:
        server = start_owned(command, log_path, owned, reporter)
        follower = _Follower(log_path, on_line) if on_line else None
        if follower:
            follower.start()
        server.wait_ready(timeout)
        reporter.detail(f"ready after {server.ready_seconds:.1f}s at {command.url_root}")
        yield server
    finally:
        for started in owned:
            code = shutdown(started.process, interrupt_timeout, terminate_timeout)
            reporter.detail(f"server stopped ({describe_exit(code)})")
        if follower:
            follower.done.set()
            follower.join(timeout=2)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """Hold Ctrl-C (SIGINT) while a child is started, so it never runs without an owner.

    Only the main thread can install a handler; elsewhere nothing is held.
    """
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield pending
    finally:
        signal.signal(signal.SIGINT, previous)


def start_owned(
    command: ServerCommand, log_path: Path, owned: list[Server], reporter: Reporter | None = None
) -> Server:
    """:func:`start`, appending the server to ``owned`` before a Ctrl-C can interrupt.

    Call it inside the ``try`` whose ``finally`` stops every server in ``owned``: a Ctrl-C
    that comes while the child is being started is held until the child is in ``owned``,
    then raised, so no server is ever left running without an owner.
    """
    with _interrupts_held() as pending:
        owned.append(start(command, log_path, reporter))
    if pending:
        raise KeyboardInterrupt
    return owned[-1]
