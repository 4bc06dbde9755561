"""A local stand-in for the Hugging Face hub's HTTP API: enough for huggingface_hub downloads.

Serves any repo id added to it: /api/models/<repo>/revision/<rev> (repo info with its files
and their sizes), /api/models/<repo>/tree/<rev>, and /<repo>/resolve/<rev>/<file> (HEAD and
GET, with HTTP range requests as the hub answers them: 206 and Content-Range, 416 past the
end). Revisions: "main", the one commit, and names given to ``add``; others are answered
RevisionNotFound. Gated repositories show their info (as the hub does) and refuse files;
missing ones are RepoNotFound, with the hub's error headers. Loopback only.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class Hub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.gated: set[str] = set()
        self.revisions: dict[str, set[str]] = {}
        self.requests: list[str] = []
        self.served: dict[str, int] = {}  # "repo/file" -> bytes of it sent in GET bodies

    def add(self, repo: str, files: dict[str, bytes], gated: bool = False, revisions: tuple[str, ...] = ()) -> None:
        self.repos[repo] = files
        self.revisions[repo] = {"main", COMMIT, *revisions}
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

        def _route(self) -> tuple[str, str, str | None] | None:
            """(repo, revision, file | "/tree" | None for the repo info)."""
            path = unquote(self.path.split("?")[0])
            ranged = self.headers.get("Range")
            hub.requests.append(f"{self.command} {path}" + (f" [{ranged}]" if ranged else ""))
            if path.startswith("/api/models/"):
                rest = path[len("/api/models/") :]
                if "/tree/" in rest:
                    repo, _, tail = rest.partition("/tree/")
                    return repo, tail.split("/")[0], "/tree"
                repo, _, revision = rest.partition("/revision/")
                return repo.rstrip("/"), revision or "main", None
            if "/resolve/" in path:
                repo, _, tail = path.lstrip("/").partition("/resolve/")
                revision, _, filename = tail.partition("/")
                return repo, revision, filename
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
            repo, revision, filename = route
            if repo not in hub.repos:
                return self._error(404, "RepoNotFound", f"Repository Not Found for url: {repo}")
            if revision not in hub.revisions[repo]:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            if repo in hub.gated and filename is not None:
                return self._error(403, "GatedRepo", f"Access to model {repo} is restricted.")
            files = hub.repos[repo]
            if filename == "/tree":
                tree = [
                    {"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                    for f, d in sorted(files.items())
                ]
                return self._json(tree, head)
            if filename is None:
                siblings = [{"rfilename": f, "size": len(d)} for f, d in sorted(files.items())]
                info = {"id": repo, "sha": COMMIT, "gated": "manual" if repo in hub.gated else False,
                        "siblings": siblings}  # fmt: skip
                return self._json(info, head)
            if filename not in files:
                return self._error(404, "EntryNotFound", f"{filename} does not exist")
            data = files[filename]
            status, body, extra = 200, data, {}
            wanted = _RANGE.match(self.headers.get("Range", ""))
            if wanted:
                start = int(wanted[1])
                end = min(int(wanted[2]) if wanted[2] else len(data) - 1, len(data) - 1)
                if start >= len(data):
                    return self._error(416, "RangeNotSatisfiable", f"bytes {start}- of {len(data)}")
                status, body = 206, data[start : end + 1]
                extra = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Accept-Ranges", "bytes")
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)
                hub.served[f"{repo}/{filename}"] = hub.served.get(f"{repo}/{filename}", 0) + len(body)
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
