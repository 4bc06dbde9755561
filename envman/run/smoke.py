"""Smoke inference: start the planned server, ask one chat completion, stop it, keep the evidence.

The request is plain OpenAI chat completions over the standard library (envman itself does
not depend on the ``openai`` package): greedy, a few tokens, with log-probabilities so the
generated token ids are recorded where the engine reports them. A run passes when the answer
is well formed and has at least one generated token. A failure is diagnosed from the server's
log with the matrix's knowledge (:mod:`envman.diagnose`); an engine that dies while starting
fails the run at once.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from envman.build.environments import BuildResult, Environment
from envman.diagnose import Finding, diagnose
from envman.errors import TargetError
from envman.hardware.host import Host
from envman.lock.uv import Uv
from envman.matrix.schema import Matrix, Modality
from envman.plan.planner import Planner, PlanRequest
from envman.plan.result import Plan
from envman.report import NullReporter, Reporter
from envman.run import evidence
from envman.run.server import LOOPBACK, StartupError, command_for, free_port, serve

PROMPT = "Say hello."
MAX_TOKENS = 8
REQUEST_TIMEOUT = 300.0  # a CPU engine's first request may compile kernels


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
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\xff\x00\x00" * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b"")
    )


def image_message() -> list[dict[str, Any]]:
    import base64

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
) -> Answer:
    """One greedy chat completion of a few tokens (``base_url`` is the OpenAI root, ``…/v1``)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
        "logprobs": True,
        "top_logprobs": 1,
    }
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
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


def describe_findings(findings: list[Finding]) -> str | None:
    if not findings:
        return None
    return "\n".join(f"{f.cause}. Fix: {f.fix} (matrix.toml {f.entry})" for f in findings)


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    plan: Plan
    environment: Environment
    timings: evidence.Timings
    answer: Answer | None
    diagnosis: str | None
    findings: tuple[Finding, ...]
    error: str | None
    log_path: Path
    log_tail: str | None
    evidence: Path

    @property
    def seconds(self) -> float:
        return self.timings.total or 0.0

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "passed": self.passed,
            "model": plan.model.name,
            "engine": plan.engine,
            "engine_version": str(plan.engine_version),
            "variant": plan.variant.name,
            "format": plan.artifact.format.value,
            "completion_tokens": self.answer.completion_tokens if self.answer else None,
            "seconds": round(self.seconds, 3),
            "timings": self.timings.to_json(),
            "answer": self.answer.to_json() if self.answer else None,
            "diagnosis": self.diagnosis,
            "error": self.error,
            "evidence": str(self.evidence),
            "log": str(self.log_path),
        }


def smoke(
    matrix: Matrix,
    plan: Plan,
    environment: Environment,
    model_path: Path,
    timeout: float,
    reporter: Reporter | None = None,
    *,
    build_seconds: float | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> SmokeResult:
    """Start ``plan``'s server from ``environment``, ask one completion, stop it, write the evidence.

    ``timeout`` bounds start-up (until the readiness probe answers 200). Ctrl-C stops the
    server and its process group, writes nothing and propagates.
    """
    reporter = reporter or NullReporter()
    when = dt.datetime.now(dt.UTC)
    record_path = evidence.path_for(plan, when)
    log_path = record_path.with_suffix(".log")
    command = command_for(plan.command, plan.env, environment.python_bin, plan.url, plan.ready_path)
    answer: Answer | None = None
    image_answer: Answer | None = None
    error: str | None = None
    ready: float | None = None
    request_seconds: float | None = None
    started = time.monotonic()
    try:
        with (
            reporter.status(f"starting {plan.engine} {plan.engine_version} ({plan.variant.name})"),
            serve(command, log_path, timeout=timeout, reporter=reporter, on_line=on_line) as server,
        ):
            ready = server.ready_seconds
            reporter.detail(f"asking {server.base_url}/chat/completions for {MAX_TOKENS} tokens")
            asked = time.monotonic()
            try:
                answer = chat(server.base_url, plan.served_model_name, timeout=request_timeout)
                if Modality.IMAGE in plan.model.modalities and not plan.model.smoke:
                    # a vision-language model with real weights must also see a picture
                    reporter.detail("asking again with an image")
                    image_answer = chat(
                        server.base_url, plan.served_model_name, timeout=request_timeout, content=image_message()
                    )
            finally:
                request_seconds = time.monotonic() - asked
    except StartupError as failure:
        error = failure.reason
    except RequestError as failure:
        error = failure.message
    total = time.monotonic() - started
    needs_image = Modality.IMAGE in plan.model.modalities and not plan.model.smoke
    passed = answer is not None and (image_answer is not None or not needs_image)
    log = _read(log_path)
    findings = [] if passed else diagnose(f"{log}\n{error or ''}", matrix, engine=plan.engine, family=plan.family)
    diagnosis = describe_findings(findings)
    tail = None if passed else "\n".join(log.rstrip().splitlines()[-40:])
    timings = evidence.Timings(build=build_seconds, start_to_ready=ready, request=request_seconds, total=total)
    document = evidence.record(
        plan=plan,
        env=environment,
        passed=passed,
        timings=timings,
        command=list(command.argv),
        model_path=model_path,
        answer=(answer.to_json() | ({"image": image_answer.to_json()} if image_answer else {})) if answer else None,
        diagnosis=diagnosis,
        findings=[f.to_json() for f in findings],
        error=error,
        log_path=log_path,
        log_tail=tail,
        when=when,
    )
    evidence.write(document, record_path)
    return SmokeResult(
        passed, plan, environment, timings, answer, diagnosis, tuple(findings), error, log_path, tail, record_path
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# -- from a model name to a smoke result (what `envman smoke` runs) ---------------------


def weights_for(plan: Plan, model_path: str | None, reporter: Reporter | None = None) -> Path:
    """Local weights for the plan: ``--model-path``, a smoke model's synthesized ones, or the hub's."""
    from envman.run.weights import obtain

    return obtain(plan.model, plan.artifact, model_path=Path(model_path) if model_path else None, reporter=reporter)


@dataclass(frozen=True)
class Prepared:
    plan: Plan
    build: BuildResult
    model_path: Path


def prepare(
    matrix: Matrix,
    host: Host,
    request: PlanRequest,
    *,
    uv: Uv,
    reporter: Reporter | None = None,
    rebuild: bool = False,
) -> Prepared:
    """Plan on a free loopback port, build (or reuse) the environment, and find the weights."""
    from envman.build.environments import build

    reporter = reporter or NullReporter()
    request = replace(request, host_address=LOOPBACK, port=free_port())
    planner = Planner(matrix, host)
    plan = planner.plan(request)
    reporter.info(
        f"{plan.model.name}: {plan.engine} {plan.engine_version} ({plan.variant.name}, {plan.artifact.label})"
    )
    for reason in plan.forced:
        reporter.warn(f"--force: {reason}")
    for warning in plan.warnings:
        reporter.warn(warning)
    built = build(
        matrix, plan.engine, plan.engine_version, plan.variant.name, uv=uv, rebuild=rebuild, reporter=reporter
    )
    model_path = weights_for(plan, request.model_path, reporter)
    if request.model_path != str(model_path):
        plan = planner.plan(replace(request, model_path=str(model_path)))  # the same choice, with the path
    return Prepared(plan, built, model_path)
