"""The one HTTP client envman uses to talk to an engine: readiness, model list, chat completions.

Plain OpenAI chat completions over the standard library (envman itself does not depend on the
``openai`` package): greedy, a few tokens, with log-probabilities so the generated token ids
are recorded where the engine reports them. Every caller (the readiness probe of a process or
a container, smoke runs, CI) goes through here.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Any

from envman.errors import TargetError

PROMPT = "Say hello."
MAX_TOKENS = 8
REQUEST_TIMEOUT = 300.0  # a CPU engine's first request may compile kernels


def status(url: str, timeout: float = 2.0, api_key: str | None = None) -> int:
    """The HTTP status ``url`` answers with; 0 when nothing answers (refused, reset, timeout)."""
    request = urllib.request.Request(url, headers=_auth(api_key))  # noqa: S310 (our own http URL)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError, ValueError):
        return 0


def model_ids(base_url: str, api_key: str | None = None, timeout: float = 5.0) -> list[str] | None:
    """The ids ``GET {base_url}/models`` lists; None when it does not answer with a model list."""
    request = urllib.request.Request(f"{base_url}/models", headers=_auth(api_key))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    return [str(e.get("id")) for e in entries if isinstance(e, dict)]


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class RequestError(TargetError):
    """The server answered the smoke request with an error or a malformed answer."""


@dataclass(frozen=True)
class Answer:
    text: str
    completion_tokens: int
    prompt_tokens: int | None
    finish_reason: str | None
    token_ids: tuple[int, ...] | None  # None: the engine did not report them
    model: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "completion_tokens": self.completion_tokens,
            "prompt_tokens": self.prompt_tokens,
            "finish_reason": self.finish_reason,
            "token_ids": list(self.token_ids) if self.token_ids is not None else None,
            "model": self.model,
        }


def _token_ids(choice: dict[str, Any]) -> tuple[int, ...] | None:
    """llama.cpp reports ``id`` in each log-probability entry; vLLM can write ``token_id:N``."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        return None
    ids = []
    for entry in content:
        if not isinstance(entry, dict):
            return None
        if isinstance(entry.get("id"), int):
            ids.append(entry["id"])
            continue
        match = re.fullmatch(r"token_id:(\d+)", str(entry.get("token", "")))
        if match is None:
            return None
        ids.append(int(match.group(1)))
    return tuple(ids)


def parse_answer(data: Any) -> Answer:
    """Check an OpenAI chat completion: a ``choices[0].message`` and ``usage.completion_tokens >= 1``."""
    if not isinstance(data, dict):
        raise RequestError(f"the answer is not a JSON object: {str(data)[:300]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise RequestError(f"the answer has no choices: {json.dumps(data)[:300]}")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise RequestError(f"choices[0] has no message: {json.dumps(choice)[:300]}")
    usage = data.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not isinstance(tokens, int) or tokens < 1:
        raise RequestError(f"the answer reports no generated token (usage: {json.dumps(usage)})")
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    text = message.get("content") or message.get("reasoning_content") or ""
    return Answer(
        text=str(text),
        completion_tokens=tokens,
        prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None,
        finish_reason=choice.get("finish_reason"),
        token_ids=_token_ids(choice),
        model=data.get("model"),
    )


def tiny_png(size: int = 32) -> bytes:
    """A small solid red PNG, made with the standard library (the image request's picture)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\xff\x00\x00" * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b"")
    )


def image_message() -> list[dict[str, Any]]:
    url = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
    return [
        {"type": "text", "text": "What colour is this picture?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]


def chat(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    timeout: float = REQUEST_TIMEOUT,
    content: str | list[dict[str, Any]] = PROMPT,
    max_tokens: int = MAX_TOKENS,
    logprobs: bool = True,
) -> Answer:
    """One greedy chat completion of a few tokens (``base_url`` is the OpenAI root, ``…/v1``).

    ``logprobs=False`` for servers that refuse the fields (Xinference 1.4.0: "top_logprobs extra
    fields not permitted").
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": max_tokens,
    }
    if logprobs:
        body |= {"logprobs": True, "top_logprobs": 1}
    headers = {"Content-Type": "application/json", **_auth(api_key)}
    url = f"{base_url}/chat/completions"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (our own http URL)
            raw = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")[:500]
        raise RequestError(f"POST {url} answered {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise RequestError(f"POST {url} failed: {getattr(error, 'reason', error)}") from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise RequestError(f"the answer is not JSON: {raw[:300]!r}") from None
    return parse_answer(data)
