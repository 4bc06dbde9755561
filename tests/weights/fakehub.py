"""A local stand-in for the Hugging Face hub's HTTP API: enough for huggingface_hub downloads.

Serves /api/models/<repo>/revision/<rev> (repo info with its files) and
/<repo>/resolve/<rev>/<file> (HEAD and GET), plus gated and missing repositories answered
with the hub's error headers. Loopback only.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class Hub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.gated: set[str] = set()
        self.requests: list[str] = []

    def add(self, repo: str, files: dict[str, bytes], gated: bool = False) -> None:
        self.repos[repo] = files
        if gated:
            self.gated.add(repo)


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _route(self) -> tuple[str, str | None] | None:
            path = unquote(self.path.split("?")[0])
            hub.requests.append(f"{self.command} {path}")
            if path.startswith("/api/models/"):
                rest = path[len("/api/models/") :]
                if "/tree/" in rest:
                    return rest.split("/tree/")[0], "/tree"
                repo = rest.split("/revision/")[0] if "/revision/" in rest else rest.rstrip("/")
                return repo, None
            if "/resolve/" in path:
                repo, _, tail = path.lstrip("/").partition("/resolve/")
                _, _, filename = tail.partition("/")
                return repo, filename
            return None

        def _json(self, data: object, head: bool) -> None:
            body = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _serve(self, head: bool) -> None:
            route = self._route()
            if route is None:
                return self._error(404, "EntryNotFound", "no such route")
            repo, filename = route
            if repo not in hub.repos:
                return self._error(404, "RepoNotFound", f"Repository Not Found for url: {repo}")
            if repo in hub.gated:
                return self._error(403, "GatedRepo", f"Access to model {repo} is restricted.")
            files = hub.repos[repo]
            if filename == "/tree":
                tree = [
                    {"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                    for f, d in sorted(files.items())
                ]
                return self._json(tree, head)
            if filename is None:
                info = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": f} for f in sorted(files)]}
                return self._json(info, head)
            if filename not in files:
                return self._error(404, "EntryNotFound", f"{filename} does not exist")
            data = files[filename]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()
            if not head:
                self.wfile.write(data)
            return None

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

    return Handler


@contextmanager
def serve(hub: Hub) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
