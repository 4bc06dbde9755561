"""TCP ports: is one free, and if not, who holds it (through psutil)."""

from __future__ import annotations

import socket

from envman.errors import UsageError
from envman.run import process


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


def owner(port: int) -> str | None:
    """'pid 1234 (python -m http.server 8000)' for the process listening on ``port``, if visible."""
    pids = process.listening_pids(port)
    if pids is None:
        return "another process (not visible to this user)"
    if not pids:
        return None
    return ", ".join(process.describe(pid) for pid in sorted(pids))


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
