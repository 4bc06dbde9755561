"""The guardian: the leader of an engine's process group, so no engine outlives envman.

envman starts ``python -m envman.run.guard FD -- ARGV...`` in a new session; the guardian
starts ARGV as its child (in the same group) and watches FD, the read end of a pipe whose
write end only envman holds. When envman dies, however it dies (SIGKILL included), the
kernel closes the write end, the guardian reads EOF and stops the whole group: SIGTERM,
a grace period, SIGKILL. A detached server is released instead: envman writes ``D`` before
it lets go, and the guardian then supervises the engine until someone stops the group.

Signals sent to the group reach the engine directly; the guardian ignores them itself and
exits with the engine's status once the engine is gone (and whatever it left in the group
is stopped). Standard library, psutil and envman.run.process only: this runs before anything else is loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil

from envman.run.process import DETACH, members

GRACE_SECONDS = 10.0


def _others(pgid: int) -> list[psutil.Process]:
    """The group's members but the guardian itself (the one membership listing: run.process)."""
    return [member for member in members(pgid) if member.pid != os.getpid()]


def _stop_group(pgid: int, grace: float) -> None:
    """SIGTERM every other member, wait up to ``grace`` seconds, SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        members = _others(pgid)
        if not members:
            return
        for member in members:
            with contextlib.suppress(psutil.Error):
                member.send_signal(sig)
        psutil.wait_procs(members, timeout=grace if sig == signal.SIGTERM else 2.0)


def _watch(fd: int, child: subprocess.Popen[bytes], pgid: int, on_orphan: list[str] | None) -> None:
    """Block on the pipe; EOF without the detach byte means envman is gone."""
    received = b""
    while True:
        try:
            chunk = os.read(fd, 64)
        except OSError:
            chunk = b""
        if not chunk:
            break
        received += chunk
        if DETACH in received:
            os.close(fd)
            return
    if child.poll() is None:
        print("envman-guard: envman is gone; stopping the engine", file=sys.stderr, flush=True)
        if on_orphan:  # what the group alone cannot stop (a container the daemon runs)
            try:
                subprocess.run(on_orphan, timeout=60, check=False, stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as error:
                print(f"envman-guard: {on_orphan[0]} failed: {error}", file=sys.stderr, flush=True)
        _stop_group(pgid, GRACE_SECONDS)


def main(argv: list[str]) -> int:
    on_orphan = None
    if len(argv) > 2 and argv[1] == "--on-orphan":
        on_orphan = json.loads(argv[2])
        argv = [argv[0], *argv[3:]]
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m envman.run.guard FD [--on-orphan JSON-ARGV] -- ARGV...", file=sys.stderr)
        return 2
    fd = int(argv[0])
    command = argv[2:]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # a handler, not SIG_IGN: handlers are reset at exec, so the engine keeps the defaults
        signal.signal(sig, lambda signum, frame: None)
    try:
        child = subprocess.Popen(command)
    except OSError as error:
        print(f"envman-guard: cannot start {command[0]}: {error}", file=sys.stderr, flush=True)
        return 127
    pgid = os.getpgid(0)
    threading.Thread(target=_watch, args=(fd, child, pgid, on_orphan), daemon=True).start()
    while True:
        try:
            code = child.wait()
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
            continue
    _stop_group(pgid, 5.0)  # workers the engine left behind
    if code < 0:  # die of the same signal, so the caller sees what killed the engine
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
