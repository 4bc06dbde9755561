"""Xinference as a frontend: its server command, the custom-model registration, and its REST API.

Xinference (``xinference-local``) is a serving layer over engines: it starts bare, then a
model is registered (a custom LLM pointing at local weights) and launched with a named engine
(``model_engine``: ``llama.cpp``, ``vLLM``, ``Transformers`` …). Which releases can drive which
engine releases, and with which flags, is matrix data (``[frontends.xinference]``); this module
only speaks Xinference's wire format:

- 1.x registers the v1 spec (``quantizations: [...]``, ``version: 1``); 4.x the v2 spec
  (``quantization``, ``version: 2``), both as a JSON string under ``model``
  (``POST /v1/model_registrations/LLM``);
- ``POST /v1/models`` launches it and answers once it loaded (``model_uid``);
- ``GET /v1/models`` lists what is running; the OpenAI routes live under ``/v1``.

Its JSON calls are standard-library HTTP; the chat completions go through :mod:`envman.run.http`.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envman.errors import TargetError

# Xinference's names for envman's engines (``model_engine`` of POST /v1/models).
MODEL_ENGINES = {
    "xllamacpp": "llama.cpp",
    "llama-cpp-python": "llama.cpp",
    "vllm": "vLLM",
    "transformers": "Transformers",
    "sglang": "SGLang",
    "mlx-lm": "MLX",
}
# Xinference's names for envman's formats (``model_format``).
MODEL_FORMATS = {"gguf": "ggufv2", "pytorch": "pytorch", "awq": "awq", "gptq": "gptq", "fp8": "fp8", "mlx": "mlx"}


class XinferenceError(TargetError):
    """Xinference answered a registration or launch with an error."""


@dataclass(frozen=True)
class ModelSpec:
    """What envman registers: one model, its weights on this machine, its chat template."""

    name: str  # the model name and uid clients use
    format: str  # envman's format value ("gguf", "pytorch")
    weights: Path  # a .gguf file or an HF folder
    quantization: str | None
    context_length: int
    size_in_billions: float
    chat_template: str | None
    stop: tuple[str, ...] = ()

    def registration(self, spec_version: int) -> dict[str, Any]:
        """The custom-LLM document for Xinference's model spec ``spec_version`` (1 or 2)."""
        fmt = MODEL_FORMATS[self.format]
        quantization = self.quantization or ("none" if fmt != "ggufv2" else "F16")
        size: int | str = int(self.size_in_billions) if self.size_in_billions >= 1 else "0_1"
        spec: dict[str, Any] = {"model_format": fmt, "model_size_in_billions": size, "model_id": None}
        if fmt == "ggufv2":
            spec["model_uri"] = str(self.weights.parent)
            spec["model_file_name_template"] = self.weights.name
        else:
            spec["model_uri"] = str(self.weights)
        if spec_version >= 2:
            spec["quantization"] = quantization
        else:
            spec["quantizations"] = [quantization]
        document: dict[str, Any] = {
            "version": spec_version,
            "context_length": self.context_length,
            "model_name": self.name,
            "model_lang": ["en"],
            "model_ability": ["generate", "chat"],
            "model_family": self.name,
            "model_specs": [spec],
            "chat_template": self.chat_template,
            "stop_token_ids": [],
            "stop": list(self.stop),
        }
        return document


def _call(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (our own http URL)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError, AttributeError):  # FastAPI puts the message under "detail"
            detail = str(json.loads(detail).get("detail", detail))
        raise XinferenceError(f"{method} {url} answered {error.code}: {detail[:2000]}") from None
    except (urllib.error.URLError, OSError) as error:
        raise XinferenceError(f"{method} {url} failed: {getattr(error, 'reason', error)}") from None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise XinferenceError(f"{method} {url}: the answer is not JSON: {raw[:300]!r}") from None


def register(url_root: str, spec: ModelSpec, spec_version: int, timeout: float = 60.0) -> None:
    """Register ``spec`` as a custom LLM (not persisted: it lives as long as this Xinference)."""
    document = spec.registration(spec_version)
    _call("POST", f"{url_root}/v1/model_registrations/LLM", {"model": json.dumps(document), "persist": False}, timeout)


def launch_body(
    spec: ModelSpec, *, model_engine: str, n_gpu: int | str | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``POST /v1/models`` document that launches the registered ``spec`` with ``model_engine``."""
    registered = spec.registration(2)["model_specs"][0]
    return {
        "model_uid": spec.name,
        "model_name": spec.name,
        "model_type": "LLM",
        "model_engine": model_engine,
        "model_format": MODEL_FORMATS[spec.format],
        "model_size_in_billions": registered["model_size_in_billions"],
        "quantization": registered["quantization"],
        "replica": 1,
        "n_gpu": n_gpu,
        **(extra or {}),
    }


def builtin_launch_body(
    uid: str,
    *,
    name: str,
    model_format: str,
    size: int | str,
    quantization: str,
    model_path: str,
    model_engine: str,
    n_gpu: int | str | None,
) -> dict[str, Any]:
    """The ``POST /v1/models`` document that launches built-in ``name`` from local weights (``model_path``:
    a GGUF file or an HF folder; Xinference then downloads nothing)."""
    return {
        "model_uid": uid,
        "model_name": name,
        "model_type": "LLM",
        "model_engine": model_engine,
        "model_format": model_format,
        "model_size_in_billions": size,
        "quantization": quantization,
        "model_path": model_path,
        "replica": 1,
        "n_gpu": n_gpu,
    }


def launch_model(url_root: str, body: dict[str, Any], *, timeout: float) -> str:
    """Launch a model (``body``: :func:`launch_body`); its uid once Xinference has loaded it."""
    answer = _call("POST", f"{url_root}/v1/models", body, timeout)
    uid = answer.get("model_uid") if isinstance(answer, dict) else None
    if not isinstance(uid, str):
        raise XinferenceError(f"POST {url_root}/v1/models did not name the model it launched: {answer!r}")
    return uid


def running_models(url_root: str, timeout: float = 5.0) -> list[str] | None:
    """The uids Xinference lists as running; None when it does not answer with a list."""
    try:
        answer = _call("GET", f"{url_root}/v1/models", timeout=timeout)
    except XinferenceError:
        return None
    entries = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(entries, list):
        return None
    return [str(e.get("id")) for e in entries if isinstance(e, dict)]
