"""A stand-in engine server for lifecycle tests (stdlib only; run as a script).

It accepts and ignores the real launchers' arguments (``-m MODULE --model ...``), reads
``--port``, and behaves as the FAKE_* environment variables say.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def main() -> int:
    args = sys.argv[1:]
    port = int(args[args.index("--port") + 1])
    env = os.environ
    print(f"fake engine starting on {port}", flush=True)
    if env.get("FAKE_GRANDCHILD_PIDFILE"):  # a worker process, as vLLM's engine core
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(env["FAKE_GRANDCHILD_PIDFILE"], "w") as f:
            f.write(str(child.pid))
    if env.get("FAKE_IGNORE_SIGNALS"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if env.get("FAKE_EXIT"):
        time.sleep(float(env.get("FAKE_EXIT_AFTER", "0.2")))
        print(env.get("FAKE_STDERR", ""), file=sys.stderr, flush=True)
        return int(env["FAKE_EXIT"])
    ready_at = time.monotonic() + float(env.get("FAKE_READY_AFTER", "0"))
    never_ready = bool(env.get("FAKE_NEVER_READY"))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *a: object) -> None:
            print(f"fake engine: {format % a}", flush=True)

        def send(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                ok = not never_ready and time.monotonic() >= ready_at
                self.send(200 if ok else 503, {"status": "ok" if ok else "loading"})
            elif self.path == "/v1/models":
                self.send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self.send(404, {})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if env.get("FAKE_REQUESTS_LOG"):  # the tests read what the engine was asked
                with open(env["FAKE_REQUESTS_LOG"], "ab") as log:
                    log.write(body + b"\n")
            if env.get("FAKE_BAD_ANSWER"):
                self.send(200, {"choices": [], "usage": {"completion_tokens": 0}})
                return
            # 3 prompt tokens, and 4 soft tokens per picture (none where FAKE_DROPS_PICTURES: a
            # chat template that leaves image_url parts out)
            pictures = 0 if env.get("FAKE_DROPS_PICTURES") else body.count(b'"image_url"') // 2
            prompt = 3 + 4 * pictures
            self.send(
                200,
                {
                    "object": "chat.completion",
                    "model": "fake",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "hi"},
                            "finish_reason": "length",
                            "logprobs": {"content": [{"id": 7, "token": "hi", "logprob": -0.1}]},
                        }
                    ],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": 1, "total_tokens": prompt + 1},
                },
            )

    if env.get("FAKE_BIND_AFTER"):  # an engine that loads before it listens
        time.sleep(float(env["FAKE_BIND_AFTER"]))
    server = HTTPServer(("127.0.0.1", port), Handler)
    print("fake engine serving", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("fake engine interrupted", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
