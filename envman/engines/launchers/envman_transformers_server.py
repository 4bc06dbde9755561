"""Serve an HF model folder with transformers behind an OpenAI-compatible HTTP API.

envman runs this module with the engine environment's interpreter
(``python -m envman_transformers_server --model DIR --served-model-name N --host H --port P
[--dtype D] [--trust-remote-code]``); it imports nothing from envman. Which server runs depends
on the installed release (read from the released wheels):

- ``transformers serve`` first shipped in 4.54.0 (``transformers/commands/serving.py``), but up
  to 4.57.x its ``/v1/chat/completions`` always answers with an SSE stream
  (``return StreamingResponse(output, ...)``), and 5.0-5.4 stream unless the request says
  ``"stream": false`` (``cli/serve.py``: ``request.get("stream", True)``): neither answers a
  plain OpenAI chat completion with JSON.
- From 5.5.0 ``transformers serve MODEL`` takes the model as its argument, answers JSON unless
  asked to stream (``cli/serving/chat_completion.py``: ``body.get("stream")``), has ``--dtype``,
  ``--host``, ``--port``, ``--trust-remote-code`` and ``GET /health``: this module runs it.
  It has no served-name option and answers 400 to a request naming another model than MODEL
  (5.24.0 ``cli/serving/utils.py`` ``_resolve_model``: "Server is pinned to ..."), so MODEL is
  the served name, a link to the folder in a private working directory (``from_pretrained``
  takes an existing local directory before the hub).
- Earlier releases: this module serves ``/health``, ``/v1/models`` and ``/v1/chat/completions``
  itself (standard library HTTP, greedy or sampled ``generate``, one request at a time).
  Up to 4.34 (no ``apply_chat_template``, or one without ``add_generation_prompt``) it renders
  the folder's chat template itself. A vision-language folder (``vision_config``) is loaded with
  its processor and ``AutoModelForImageTextToText``; ``image_url`` parts (data URLs) reach it.

transformers serve checks no API key, and neither does this server: envman refuses ``--api-key``
for this engine.
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
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROG = "envman_transformers_server"
FIRST_JSON_SERVE = (5, 5)  # the first transformers whose `serve` answers plain chat completions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the HF model folder (config.json, *.safetensors)")
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when there is one)")
    parser.add_argument("--trust-remote-code", action="store_true")
    return parser.parse_args(argv)


def release(version: str) -> tuple[int, int]:
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def linkable(name: str) -> bool:
    """A served name that can be a relative path (``org/name``) below the working directory."""
    parts = name.split("/")
    return all(p and p not in (".", "..") and "@" not in p and not p.startswith("-") for p in parts)


def serve_argv(args: argparse.Namespace) -> list[str]:
    """``transformers serve`` for releases >= 5.5 (cli/transformers.py runs its typer app as __main__)."""
    argv = [sys.executable, "-m", "transformers.cli.transformers", "serve", args.served_model_name]
    argv += ["--host", args.host, "--port", str(args.port), "--dtype", args.dtype, "--device", args.device]
    if args.trust_remote_code:
        argv.append("--trust-remote-code")
    return argv


class Model:
    """A loaded causal LM and its tokenizer; ``generate`` holds a lock (one request at a time)."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch  # type: ignore[import-not-found,unused-ignore]  # only in the engine's environment
        from transformers import AutoModelForCausalLM, AutoTokenizer  # type: ignore[import-not-found,unused-ignore]

        self.torch = torch
        self.model_dir = args.model
        dtype = "auto" if args.dtype == "auto" else getattr(torch, args.dtype)
        trust = args.trust_remote_code
        self.processor: Any = None
        if takes_images(args.model):  # a vision-language model: its processor puts the picture in the prompt
            from transformers import AutoModelForImageTextToText, AutoProcessor  # type: ignore[import-not-found,unused-ignore]

            self.processor = AutoProcessor.from_pretrained(args.model, trust_remote_code=trust)
            self.tokenizer = self.processor.tokenizer
            self.model = AutoModelForImageTextToText.from_pretrained(
                args.model, torch_dtype=dtype, trust_remote_code=trust
            )
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(args.model, trust_remote_code=trust)
            self.model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype, trust_remote_code=trust)
        device = args.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model.to(device).eval()
        self.lock = threading.Lock()

    def prompt_ids(self, messages: list[Any]) -> list[int]:
        """The chat template applied to ``messages``, as token ids."""
        if not takes_generation_prompt(self.tokenizer):
            text = render_chat_template(self.model_dir, messages, self.tokenizer)
            return [int(t) for t in self.tokenizer.encode(text, add_special_tokens=False)]
        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(prompt, dict) or hasattr(prompt, "input_ids"):  # transformers 5 returns a BatchEncoding
            prompt = prompt["input_ids"]
        return [int(t) for t in prompt]

    def inputs(self, messages: list[Any]) -> dict[str, Any]:
        """The model's inputs for the chat: input_ids, attention_mask, and pixel_values for pictures."""
        if self.processor is None:
            ids = self.torch.tensor([self.prompt_ids(messages)], device=self.device)
            return {"input_ids": ids, "attention_mask": self.torch.ones_like(ids)}
        messages, images = with_images(messages)
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        encoded = self.processor(text=text, images=images or None, return_tensors="pt")
        return {k: v.to(self.device) if hasattr(v, "to") else v for k, v in encoded.items()}

    def generate(self, body: dict[str, Any]) -> tuple[list[int], list[int], str]:
        """Prompt ids, generated ids and the finish reason for an OpenAI chat request."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty list")
        inputs = self.inputs(messages)
        prompt_ids = [int(t) for t in inputs["input_ids"][0]]
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 256)
        temperature = float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0)
        options: dict[str, Any] = {"max_new_tokens": max_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            options["temperature"] = temperature
            if body.get("top_p") is not None:
                options["top_p"] = float(body["top_p"])
        else:  # greedy: unset the sampling defaults of generation_config.json, which would warn
            options.update(temperature=None, top_p=None, top_k=None)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with self.lock, self.torch.inference_mode():
            output = self.model.generate(**inputs, pad_token_id=pad, **options)
        new = [int(t) for t in output[0][len(prompt_ids) :]]
        eos = self.model.generation_config.eos_token_id
        stops = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        finish = "stop" if new and new[-1] in stops else "length"
        return prompt_ids, new, finish  # the stop token counts as generated, as in other engines


def takes_images(model_dir: str) -> bool:
    """A vision-language model folder: its config.json has a ``vision_config`` (Gemma 3, Mistral 3 …)."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as handle:
        return "vision_config" in json.load(handle)


def with_images(messages: list[Any]) -> tuple[list[Any], list[Any]]:
    """OpenAI messages as a processor's chat template takes them: each ``image_url`` part becomes
    ``{"type": "image"}`` and its picture (a ``data:`` URL only: this server fetches nothing) a
    PIL image, in order."""
    import base64
    import io

    from PIL import Image  # type: ignore[import-not-found,unused-ignore]  # the CPU variant locks Pillow

    images: list[Any] = []
    out: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            out.append(message)
            continue
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                head, _, data = url.partition(",")
                if not (head.startswith("data:image/") and head.endswith(";base64")):
                    raise ValueError("an image_url must be a data:image/...;base64 URL (this server fetches nothing)")
                images.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
                parts.append({"type": "image"})
            else:
                parts.append(part)
        out.append({**message, "content": parts})
    return out, images


def takes_generation_prompt(tokenizer: Any) -> bool:
    """Whether the tokenizer's ``apply_chat_template`` takes ``add_generation_prompt``: none before
    4.34, and 4.34's passes unknown keywords on to encoding ("_batch_encode_plus() got an
    unexpected keyword argument 'add_generation_prompt'", seen here); 4.36.0's has it."""
    import inspect

    apply = getattr(tokenizer, "apply_chat_template", None)
    return apply is not None and "add_generation_prompt" in inspect.signature(apply).parameters


def render_chat_template(model_dir: str, messages: list[Any], tokenizer: Any) -> str:
    """transformers <= 4.34 cannot add the generation prompt: render the folder's template as
    4.36's ``PreTrainedTokenizerBase.apply_chat_template`` does (jinja2's sandbox, trim_blocks and
    lstrip_blocks, the special tokens as variables)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # type: ignore[import-not-found,unused-ignore]  # torch requires it

    template = None
    jinja = os.path.join(model_dir, "chat_template.jinja")  # where transformers 5 writes it
    if os.path.exists(jinja):
        with open(jinja, encoding="utf-8") as handle:
            template = handle.read()
    else:
        with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as handle:
            template = json.load(handle).get("chat_template")
    if not isinstance(template, str):
        raise ValueError(f"{model_dir} has no chat template (tokenizer_config.json chat_template)")
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    specials = {name: getattr(tokenizer, name, None) for name in ("bos_token", "eos_token", "pad_token", "unk_token")}
    return str(environment.from_string(template).render(messages=messages, add_generation_prompt=True, **specials))


def error_line(error: BaseException) -> str:
    """One line in Python's exception form (``RuntimeError: …``): what envman quotes as the engine's error."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"[:600]


def make_handler(state: dict[str, Any], args: argparse.Namespace) -> type[BaseHTTPRequestHandler]:
    created = int(time.time())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *log_args: Any) -> None:
            sys.stderr.write(f"{PROG}: {self.address_string()} {format % log_args}\n")

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str) -> None:
            self._send(status, {"error": {"code": status, "message": message, "type": kind}})

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/health":
                if state.get("model") is None:
                    self._error(503, "Loading model", "unavailable_error")
                else:
                    self._send(200, {"status": "ok"})
            elif path == "/v1/models":
                model = {"id": args.served_model_name, "object": "model", "created": created, "owned_by": "envman"}
                self._send(200, {"object": "list", "data": [model]})
            else:
                self._error(404, "Not Found", "not_found_error")

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path != "/v1/chat/completions":
                self._error(404, "Not Found", "not_found_error")
                return
            model: Model | None = state.get("model")
            if model is None:
                self._error(503, "Loading model", "unavailable_error")
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                prompt_ids, new, finish = model.generate(body)
            except (ValueError, TypeError, KeyError) as error:
                print(f"{PROG}: the request failed:\n{error_line(error)}", file=sys.stderr, flush=True)
                self._error(400, str(error), "invalid_request_error")
                return
            text = model.tokenizer.decode(new, skip_special_tokens=True)
            ident = f"chatcmpl-{uuid.uuid4().hex}"
            usage = {
                "prompt_tokens": len(prompt_ids),
                "completion_tokens": len(new),
                "total_tokens": len(prompt_ids) + len(new),
            }
            if not body.get("stream"):
                message = {"role": "assistant", "content": text}
                choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                self._send(
                    200,
                    {
                        "id": ident,
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": args.served_model_name,
                        "choices": [choice],
                        "usage": usage,
                    },
                )
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            base = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time())}
            base["model"] = args.served_model_name
            pieces = [{"role": "assistant", "content": ""}, {"content": text}]
            chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in pieces]
            chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": usage})
            try:
                for chunk in chunks:
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
            except OSError:
                pass  # the client went away

    return Handler


def run_serve(args: argparse.Namespace, version: str) -> int:
    """``transformers serve`` in a working directory where the served name links to the model folder."""
    import shutil
    import subprocess
    import tempfile

    work = tempfile.mkdtemp(prefix="envman-transformers-")
    try:
        link = os.path.join(work, *args.served_model_name.split("/"))
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.abspath(args.model), link)
        command = serve_argv(args)
        print(f"{PROG}: transformers {version}: running {' '.join(command)} in {work}", file=sys.stderr, flush=True)
        # huggingface_hub's CLI would ask PyPI for a newer transformers first (check_cli_update)
        env = {**os.environ, "HF_HUB_DISABLE_UPDATE_CHECK": "1"}
        child = subprocess.Popen(command, cwd=work, env=env)
        # a SIGTERM to this process alone still stops the server (and then the link is removed)
        signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGTERM))
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # envman signals the whole group: the child has it too
                continue
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import transformers  # type: ignore[import-not-found,unused-ignore]  # only in the engine's environment

    version = transformers.__version__
    if release(version) >= FIRST_JSON_SERVE and linkable(args.served_model_name):
        return run_serve(args, version)
    state: dict[str, Any] = {}
    # Bound before the model loads, so /health answers 503 while it loads.
    http = ThreadingHTTPServer((args.host, args.port), make_handler(state, args))
    http.daemon_threads = True
    print(f"{PROG}: transformers {version}: loading {args.model}", file=sys.stderr, flush=True)
    threading.Thread(target=http.serve_forever, name="http", daemon=True).start()
    try:
        state["model"] = Model(args)
    except Exception as error:  # a model transformers cannot load: say so and exit 1
        print(f"{PROG}: transformers {version} failed to load {args.model}", file=sys.stderr, flush=True)
        print(error_line(error), file=sys.stderr, flush=True)
        http.shutdown()
        return 1
    print(f"{PROG}: serving {args.served_model_name} at http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # envman stops the server with SIGINT
        threading.Event().wait()
    http.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
