"""An engine's server behind one interface, whether a local process or a container.

A :class:`Server` can say whether it exited, show its log, tell whether the port answers
from *it*, and stop. :func:`wait_ready` is the one readiness loop over any server: it polls
the readiness URL, fails at once (with the log's tail) if the server exits first, and accepts
a 200 only from this server — a port taken by someone else meanwhile is an error, not
"ready". :class:`ProcessServer` is the local backend (a guarded process group, see
:mod:`envman.run.process`); the container backend lives in :mod:`envman.docker.serve`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from envman import proc
from envman.engines.base import Launch
from envman.errors import TargetError
from envman.files import ensure_dir
from envman.report import NullReporter, Reporter
from envman.run import http, process
from envman.run.ports import free_port, is_free

__all__ = ["free_port", "is_free"]

# Where the launcher modules that engines without a console script run (`python -m ...`) live.
LAUNCHERS = Path(__file__).resolve().parent.parent / "engines" / "launchers"
LOOPBACK = "127.0.0.1"
# Environment variables of envman's own interpreter that must not leak into an engine's.
_DROP = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "__PYVENV_LAUNCHER__")
# Signals that stop envman; while a child starts they are held, so it never runs unowned.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class ServerCommand:
    """A launch made concrete for one environment: the whole child environment included."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    url_root: str  # http://127.0.0.1:PORT
    ready_path: str = "/health"
    served_model_name: str = ""
    secret_env: frozenset[str] = frozenset()

    @property
    def ready_url(self) -> str:
        return self.url_root + self.ready_path

    @property
    def base_url(self) -> str:
        """The OpenAI API root."""
        return self.url_root + "/v1"

    @property
    def port(self) -> int | None:
        return urllib.parse.urlsplit(self.url_root).port


def command_for(launch: Launch, python: Path, name: str | None = None) -> ServerCommand:
    """``launch`` made concrete for the environment whose interpreter is ``python``.

    ``argv[0] == "python"`` becomes the environment's interpreter and a console script
    found in the environment's ``bin`` is run from there; the child gets a clean copy of
    this environment (none of envman's Python variables), the environment's ``bin`` first
    on PATH, the launcher modules on PYTHONPATH, the launch's variables on top, and the
    server's ``name`` as a marker (``ENVMAN_SERVER``) so it can be found without a record.
    """
    bin_dir = python.parent
    first = launch.argv[0]
    if first == "python":
        first = str(python)
    elif "/" not in first and (bin_dir / first).exists():
        first = str(bin_dir / first)
    child = proc.child_env(drop=_DROP)
    child["PATH"] = os.pathsep.join([str(bin_dir), child.get("PATH", os.defpath)])
    child["VIRTUAL_ENV"] = str(bin_dir.parent)
    child["PYTHONPATH"] = str(LAUNCHERS)
    child["PYTHONUNBUFFERED"] = "1"  # the log is read while the server runs, and after a crash
    child.update(launch.env)
    if name:
        child[process.SERVER_MARKER] = name
        child[process.HOME_MARKER] = process.home_marker()
    return ServerCommand(
        (first, *launch.argv[1:]),
        child,
        launch.url_root,
        launch.ready_path,
        launch.served_model_name,
        launch.secret_env,
    )


class StartupError(TargetError):
    """The server exited, or did not become ready in time, while starting."""

    def __init__(self, reason: str, *, log_tail: str, log: str, returncode: int | None, hint: str | None) -> None:
        super().__init__(f"{reason}:\n{log_tail}" if log_tail else reason, hint)
        self.reason = reason
        self.log = log
        self.returncode = returncode


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class Server(Protocol):
    """What envman needs of a running engine, whatever runs it."""

    started: float  # time.monotonic() at start
    ready_seconds: float | None

    @property
    def url_root(self) -> str: ...

    @property
    def ready_path(self) -> str: ...

    @property
    def served_model_name(self) -> str: ...

    @property
    def log_hint(self) -> str:
        """Where the whole log is."""
        ...

    def exit_code(self) -> int | None:
        """The exit status once it has exited; None while it runs."""
        ...

    def log(self) -> str: ...

    def answers_from_self(self) -> tuple[bool, str | None]:
        """Whether the port answers from this server; if not, who holds it."""
        ...

    def stop(self) -> int | None: ...


def log_tail(server: Server, lines: int = 40) -> str:
    return "\n".join(server.log().rstrip().splitlines()[-lines:])


def wait_ready(server: Server, timeout: float, poll: float = 0.05) -> float:
    """Poll the readiness URL until *this* server answers 200; seconds from start to ready.

    Raises :class:`StartupError` as soon as the server exits, when another process holds
    the port, or when ``timeout`` passes.
    """
    deadline = server.started + timeout
    delay = poll
    ready_url = server.url_root + server.ready_path
    while True:
        code = server.exit_code()
        if code is not None:
            raise StartupError(
                f"the server exited during start-up ({describe_exit(code)})",
                log_tail=log_tail(server),
                log=server.log(),
                returncode=code,
                hint=f"full log: {server.log_hint}",
            )
        if http.status(ready_url, timeout=min(2.0, max(0.1, deadline - time.monotonic()))) == 200:
            ours, holder = server.answers_from_self()
            if ours:
                server.ready_seconds = time.monotonic() - server.started
                return server.ready_seconds
            raise StartupError(
                f"{ready_url} answers, but not from this engine: the port was taken while it started"
                + (f" (by {holder})" if holder else ""),
                log_tail=log_tail(server),
                log=server.log(),
                returncode=None,
                hint="pick another --port (or --port 0 for a free one); `envman ps` lists envman's servers",
            )
        if time.monotonic() >= deadline:
            raise StartupError(
                f"the server was not ready after {timeout:g}s ({ready_url} did not answer 200)",
                log_tail=log_tail(server),
                log=server.log(),
                returncode=None,
                hint=f"a bigger --timeout may help; full log: {server.log_hint}",
            )
        time.sleep(delay)
        if time.monotonic() - server.started > 2.0:  # quick engines are seen at once; slow ones polled less
            delay = min(0.5, delay * 1.5)


@dataclass
class ProcessServer:
    """A local server: the guarded process group of one engine."""

    command: ServerCommand
    spawned: process.Spawned
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    ready_seconds: float | None = None
    stop_timeouts: tuple[float, float] = (10.0, 5.0)

    @property
    def pid(self) -> int:
        """The group's leader (the guardian): also the process group id."""
        return self.spawned.pid

    @property
    def url_root(self) -> str:
        return self.command.url_root

    @property
    def ready_path(self) -> str:
        return self.command.ready_path

    @property
    def served_model_name(self) -> str:
        return self.command.served_model_name

    @property
    def base_url(self) -> str:
        return self.command.base_url

    @property
    def log_hint(self) -> str:
        return str(self.log_path)

    def exit_code(self) -> int | None:
        return self.spawned.process.poll()

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self, lines)

    def answers_from_self(self) -> tuple[bool, str | None]:
        port = self.command.port
        if port is None:
            return True, None
        listens = process.group_listens(self.pid, port)
        if listens is None:  # the socket table is closed to us: the served name must match
            ids = http.model_ids(self.base_url)
            return (ids is None or not self.served_model_name or self.served_model_name in ids), None
        if listens:
            return True, None
        holders = process.listening_pids(port) or set()
        return False, ", ".join(process.describe(pid) for pid in sorted(holders)) or None

    def wait_ready(self, timeout: float, poll: float = 0.05) -> float:
        return wait_ready(self, timeout, poll)

    def detach(self) -> None:
        self.spawned.detach()

    def stop(self) -> int | None:
        interrupt, terminate = self.stop_timeouts
        code = process.stop_group(
            self.pid, self.spawned.process, interrupt_timeout=interrupt, terminate_timeout=terminate
        )
        self.spawned.release()
        return code


def start(command: ServerCommand, log_path: Path, reporter: Reporter | None = None) -> ProcessServer:
    """Start the server guarded, in a new session (its own process group), output to ``log_path``."""
    reporter = reporter or NullReporter()
    ensure_dir(log_path.parent)
    shown = [("***" if any(command.env.get(k) == a for k in command.secret_env) else a) for a in command.argv]
    reporter.detail(f"$ {shlex.join(shown)}  > {log_path}")
    return ProcessServer(command, process.spawn(command.argv, command.env, log_path), log_path)


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold the stop signals while a child is started, so it never runs without an owner.

    Only the main thread can install handlers; elsewhere nothing is held. A held signal is
    raised again once the previous handlers are back.
    """
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield pending
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start_owned(
    command: ServerCommand, log_path: Path, owned: list[ProcessServer], reporter: Reporter | None = None
) -> ProcessServer:
    """:func:`start`, appending the server to ``owned`` before a stop signal can interrupt.

    Call it inside the ``try`` whose ``finally`` stops every server in ``owned``: a signal
    that comes while the child is being started is held until the child is in ``owned``,
    then delivered, so no server is ever left running without an owner.
    """
    with signals_held() as pending:
        owned.append(start(command, log_path, reporter))
    if pending:
        signal.raise_signal(pending[0])
        raise KeyboardInterrupt  # a handler that does not raise (SIG_IGN) still ends the start
    return owned[-1]


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
) -> Iterator[ProcessServer]:
    """Start the server, wait until it is ready, yield it; stop it and its group on the way out."""
    reporter = reporter or NullReporter()
    owned: list[ProcessServer] = []
    follower = None
    try:
        server = start_owned(command, log_path, owned, reporter)
        server.stop_timeouts = (interrupt_timeout, terminate_timeout)
        follower = _Follower(log_path, on_line) if on_line else None
        if follower:
            follower.start()
        server.wait_ready(timeout)
        reporter.detail(f"ready after {server.ready_seconds:.1f}s at {command.url_root}")
        yield server
    finally:
        for started in owned:
            code = started.stop()
            reporter.detail(f"server stopped ({describe_exit(code) if code is not None else 'gone'})")
        if follower:
            follower.done.set()
            follower.join(timeout=2)
