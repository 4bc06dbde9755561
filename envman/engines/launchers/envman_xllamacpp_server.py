"""Serve a GGUF file with xllamacpp behind an OpenAI-compatible HTTP API.

envman runs this module with the engine environment's interpreter
(``python -m envman_xllamacpp_server --model F.gguf --served-model-name N --host H --port P
--ctx-size C``); it imports nothing from envman. xllamacpp's Python API drifted:

- ``CommonParams.model``: the path string up to 0.1.11; a ``CommonParamsModel`` with ``.path``
  from 0.1.12.
- ``Server.handle_chat_completions``: ``(json_bytes, err_callback, ok_callback)`` up to 0.1.x;
  ``(dict, callback=None) -> dict`` from 0.2.0.
- Early 0.1.x (seen in 0.1.0-0.1.3; 0.1.10 has both) have no ``handle_chat_completions``: their
  ``handle_completions(json_bytes, err_callback, ok_callback)`` takes a chat body (``messages``,
  rendered with the model's chat template) and answers a ``text_completion``
  (``choices[].text``), which this module turns into a ``chat.completion``.
- HTTP: ``Server(params)`` itself serves llama.cpp's OpenAI routes (``listening_address``) from
  0.2.7; older releases serve nothing, so this module serves /health, /v1/models and
  /v1/chat/completions itself with the standard library.
- ``cpuparams.n_threads``: -1 by default; up to 0.1.x releases (seen in 0.1.0) pass it to
  llama.cpp as is and abort in warm-up (``GGML_ASSERT(n_threads > 0) failed``); later ones
  resolve -1 to the CPU count. Set to the CPU count here when it is below 1.
- Threads: llama.cpp's barrier between a graph's ops spins. Measured with
  bench/xllamacpp_threads.py (2026.10.11549, a 3 MB smoke GGUF, 64 tokens, 2 cores busy with two
  other spinning processes): 2 threads answered in 0.2-40 s (median ~0.8 s), 1 thread in 60-76 ms;
  ``poll = 0`` did not help. Below :data:`SMALL_MODEL_BYTES` a model is computed on one thread
  (``--threads`` overrides), above it llama.cpp keeps its own count.
- ``hostname`` (a string) up to 2026.4; ``hostnames`` (a list) later. ``model_alias``: a string
  up to 0.2.13, a set from 0.2.14.

A model that fails to load ends the process with exit status 1 and the error on stderr
(llama.cpp logs the cause, e.g. ``unknown model architecture: 'gemma3'``, just before).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROG = "envman_xllamacpp_server"
SMALL_MODEL_BYTES = 64 * 1024 * 1024  # a model this small gains nothing from a second thread


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the .gguf file")
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--ctx-size", type=int, default=4096)
    parser.add_argument("--n-gpu-layers", type=int, default=None)
    parser.add_argument(
        "--threads", type=_at_least_one, default=None,
        help=f"CPU threads (default: 1 for a model under {SMALL_MODEL_BYTES >> 20} MiB, else llama.cpp's own)",
    )  # fmt: skip
    # envman passes the key in ENVMAN_API_KEY: argv is readable by every local user
    parser.add_argument("--api-key", default=os.environ.get("ENVMAN_API_KEY") or None)
    return parser.parse_args(argv)


def make_params(xlc: Any, args: argparse.Namespace) -> Any:
    params = xlc.CommonParams()
    if isinstance(params.model, str):  # xllamacpp <= 0.1.11: the path itself
        params.model = args.model
    else:  # xllamacpp >= 0.1.12: CommonParamsModel
        params.model.path = args.model
    params.n_ctx = args.ctx_size
    threads = chosen_threads(args)
    for cpu in (getattr(params, "cpuparams", None), getattr(params, "cpuparams_batch", None)):
        if cpu is None:
            continue
        if threads is not None:
            cpu.n_threads = threads
        elif cpu.n_threads < 1:  # old 0.1.x: -1 reaches GGML_ASSERT(n_threads > 0)
            cpu.n_threads = os.cpu_count() or 1
    if args.n_gpu_layers is not None:
        params.n_gpu_layers = args.n_gpu_layers
    # model_alias: str up to 0.2.13, set[str] from 0.2.14 (the name /v1/models reports)
    params.model_alias = args.served_model_name if isinstance(params.model_alias, str) else {args.served_model_name}
    if hasattr(params, "hostnames"):  # after 2026.4: a list of addresses
        params.hostnames = [args.host]
    else:
        params.hostname = args.host
    params.port = args.port
    if args.api_key:
        params.api_keys = [args.api_key]
    return params


def chosen_threads(args: argparse.Namespace) -> int | None:
    """``--threads``; else 1 for a small model file; else None (llama.cpp decides)."""
    if args.threads is not None:
        return int(args.threads)
    try:
        small = os.path.getsize(args.model) < SMALL_MODEL_BYTES
    except OSError:
        return None  # xllamacpp reports the missing file
    return 1 if small else None


def has_http(xlc: Any) -> bool:
    """xllamacpp >= 0.2.7 serves HTTP itself (``Server.listening_address``)."""
    return hasattr(xlc.Server, "listening_address")


def uses_callbacks(server: Any) -> bool:
    """xllamacpp < 0.2: handlers take a JSON bytes body and two callbacks (error, ok)."""
    handler = getattr(server, "handle_chat_completions", None)
    if handler is None:  # early 0.1.x: only handle_completions(prompt_json_str, res_error, res_ok)
        return True
    code = getattr(handler, "__code__", None)
    return code is not None and "res_ok" in code.co_varnames


def as_chat(result: dict[str, Any]) -> dict[str, Any]:
    """A ``text_completion`` answer (early 0.1.x) as the ``chat.completion`` it stands for."""
    if result.get("object") != "text_completion":
        return result
    choices = [
        {"index": c.get("index", i), "message": {"role": "assistant", "content": c.get("text", "")},
         "logprobs": c.get("logprobs"), "finish_reason": c.get("finish_reason")}
        for i, c in enumerate(result.get("choices", []))
    ]  # fmt: skip
    return {**result, "object": "chat.completion", "choices": choices}


class Chat:
    """Chat completions over whichever handler API the installed xllamacpp has."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.callbacks = uses_callbacks(server)
        # early 0.1.x: the chat handler is named handle_completions and answers text_completion
        self.handler = getattr(server, "handle_chat_completions", None) or server.handle_completions

    def complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.callbacks:
            results: dict[str, Any] = {}

            def ok(data: bytes | str) -> None:
                results["ok"] = json.loads(data)

            def error(data: bytes | str) -> None:
                results["error"] = json.loads(data)

            self.handler(json.dumps(body).encode(), error, ok)
            if "error" in results:
                return _error(results["error"])
            return 200, as_chat(results.get("ok", {}))
        result: dict[str, Any] = self.server.handle_chat_completions(body)
        if "choices" not in result and "code" in result:
            return _error(result)
        return 200, result

    def stream(self, body: dict[str, Any], emit: Any) -> None:
        """Call ``emit(chunk_or_error: dict)`` per streamed chunk."""

        def each(data: Any) -> bool:
            chunk = json.loads(data) if isinstance(data, bytes | str) else data
            return bool(emit(chunk))  # True asks xllamacpp >= 0.2.6 to stop generating

        if self.callbacks:
            self.handler(json.dumps(body).encode(), each, each)
        else:
            self.server.handle_chat_completions(body, each)


def _error(data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    inner = data.get("error", data)
    status = inner.get("code", 500) if isinstance(inner, dict) else 500
    return (status if isinstance(status, int) and 400 <= status < 600 else 500), {"error": inner}


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.chat: Chat | None = None  # set once the model is loaded
        self.created = int(time.time())


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{PROG}: {self.address_string()} {format % args}\n")

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            key = state.args.api_key
            if not key or self.headers.get("Authorization", "") == f"Bearer {key}":
                return True
            self._send(401, {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}})
            return False

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("/health", "/v1/health"):
                if state.chat is None:
                    self._send(503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})
                else:
                    self._send(200, {"status": "ok"})
            elif path in ("/models", "/v1/models"):
                if self._authorized():
                    model = {"id": state.args.served_model_name, "object": "model", "created": state.created}
                    self._send(200, {"object": "list", "data": [{**model, "owned_by": "llamacpp"}]})
            else:
                self._send(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path not in ("/chat/completions", "/v1/chat/completions"):
                self._send(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})
                return
            if not self._authorized():
                return
            chat = state.chat
            if chat is None:
                self._send(503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            except ValueError as error:
                self._send(400, {"error": {"code": 400, "message": str(error), "type": "invalid_request_error"}})
                return
            if not body.get("stream"):
                self._send(*chat.complete(body))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

            def emit(chunk: dict[str, Any]) -> bool:
                if "choices" not in chunk and "code" in chunk:
                    chunk = {"error": chunk}
                try:
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                except OSError:
                    return True  # the client went away: stop generating
                return False

            chat.stream(body, emit)
            with contextlib.suppress(OSError):  # the client went away
                self.wfile.write(b"data: [DONE]\n\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    import xllamacpp as xlc  # type: ignore[import-not-found,unused-ignore]  # only in the engine's environment

    version = getattr(xlc, "__version__", "?")
    params = make_params(xlc, args)
    http: ThreadingHTTPServer | None = None
    state = State(args)
    if not has_http(xlc):
        # Bound before the model loads, so /health answers 503 while it loads.
        http = ThreadingHTTPServer((args.host, args.port), make_handler(state))
        http.daemon_threads = True
        threading.Thread(target=http.serve_forever, name="http", daemon=True).start()
    print(f"{PROG}: xllamacpp {version}: loading {args.model}", file=sys.stderr, flush=True)
    try:
        server = xlc.Server(params)
    except Exception as error:  # xllamacpp raises RuntimeError("Failed to init server ...")
        print(f"{PROG}: xllamacpp {version} failed to load {args.model}: {error}", file=sys.stderr, flush=True)
        if http is not None:
            http.shutdown()
        return 1
    # llama.cpp's server installs its own SIGINT/SIGTERM handlers while it starts (>= 0.2.7);
    # take them back so a signal reaches this loop, which shuts the server down in order.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if http is None:
        address = server.listening_address
    else:
        state.chat = Chat(server)
        address = f"http://{args.host}:{http.server_address[1]}"
    print(f"{PROG}: serving {args.served_model_name} at {address}", file=sys.stderr, flush=True)
    while not stop.wait(0.2):
        pass
    print(f"{PROG}: stopping", file=sys.stderr, flush=True)
    if http is not None:
        http.shutdown()
    del server  # joins llama.cpp's main loop
    return 0


if __name__ == "__main__":
    sys.exit(main())
