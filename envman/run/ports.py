"""TCP ports: is one free, and if not, who holds it (Linux: /proc/net/tcp*, /proc/*/fd)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from envman.errors import UsageError

_LISTEN = "0A"


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def owner(port: int) -> str | None:
    """'pid 1234 (python -m http.server 8000)' for the process listening on ``port``, if visible."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        fd_dir = Path("/proc", pid, "fd")
        try:
            links = {os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)}
        except OSError:
            continue
        if links & targets:
            try:
                argv = Path("/proc", pid, "cmdline").read_bytes().split(b"\0")
                command = " ".join(a.decode(errors="replace") for a in argv if a)
            except OSError:
                command = "?"
            return f"pid {pid} ({command[:120]})"
    return "another process (not visible to this user)"


def claim(port: int, host: str) -> int:
    """The port to serve on: ``port``, checked free, or a free one when it is 0."""
    if port == 0:
        return free_port(host)
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port", hint="use 1-65535, or 0 for a free one")
    if not is_free(port, host):
        holder = owner(port)
        raise UsageError(
            f"port {port} on {host} is in use" + (f" by {holder}" if holder else ""),
            hint="stop it (`envman ps` lists envman's servers), pick another --port, or --port 0 for a free one",
        )
    return port
