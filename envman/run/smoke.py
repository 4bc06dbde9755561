"""Smoke inference, the one loop: start a server (a process or a container), wait until it is
ready, ask one chat completion, stop it, keep the evidence.

A run passes when the answer is well formed and has at least one generated token (and, for a
vision-language model, real or synthesized, when it also answers about a picture). A failure is
diagnosed from the server's log with the matrix's knowledge (:mod:`envman.diagnose`); a server
that dies while starting fails the run at once. What runs the server is a :class:`Runner`:
:class:`ProcessRunner` here, the container runner in :mod:`envman.docker.serve`; both give
the same :class:`SmokeResult` and the same evidence record.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from envman.build.environments import BuildResult, Environment
from envman.diagnose import Finding, diagnose
from envman.diagnose import render as render_findings
from envman.engines.base import Launch
from envman.engines.launch import Bindings, launch
from envman.hardware.host import Host
from envman.lock.uv import Uv
from envman.matrix.schema import Matrix, Modality
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan
from envman.report import NullReporter, Reporter
from envman.run import evidence
from envman.run.http import MAX_TOKENS, REQUEST_TIMEOUT, Answer, RequestError, chat, image_message
from envman.run.ports import free_port
from envman.run.server import LOOPBACK, Server, StartupError, _Follower, command_for, start_owned, wait_ready

__all__ = ["Answer", "RequestError", "SmokeResult", "smoke"]


class Runner(Protocol):
    """What starts a smoke run's server, and what the evidence says it ran in."""

    launch: Launch
    weights: str

    def environment(self) -> dict[str, Any]:
        """The environment or image, for the evidence record."""
        ...

    def lock(self) -> dict[str, Any]: ...

    def argv(self) -> list[str]:
        """The command as it runs (the environment's interpreter, the image's command)."""
        ...

    def start(self, owned: list[Server], log_path: Path, reporter: Reporter) -> Server:
        """Start the server and append it to ``owned`` before anything can interrupt."""
        ...


@dataclass
class ProcessRunner:
    """The server as a local process group from a built environment."""

    launch: Launch
    built: Environment
    weights: str

    def environment(self) -> dict[str, Any]:
        return evidence.environment(self.built)

    def lock(self) -> dict[str, Any]:
        return {"digest": self.built.lock_digest, "lockfile": self.built.lockfile}

    def argv(self) -> list[str]:
        return list(command_for(self.launch, self.built.python_bin).argv)

    def start(self, owned: list[Server], log_path: Path, reporter: Reporter) -> Server:
        command = command_for(self.launch, self.built.python_bin)
        started: list[Any] = []
        try:
            return start_owned(command, log_path, started, reporter)
        finally:
            owned.extend(started)


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    plan: Plan
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
    runner: Runner,
    timeout: float,
    reporter: Reporter | None = None,
    *,
    build_seconds: float | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> SmokeResult:
    """Start ``runner``'s server, ask one completion, stop it, write the evidence.

    ``timeout`` bounds start-up (until the readiness probe answers 200). A stop signal stops
    the server and everything it started, writes nothing and propagates.
    """
    reporter = reporter or NullReporter()
    when = dt.datetime.now(dt.UTC)
    record_path = evidence.path_for(plan, when)
    log_path = record_path.with_suffix(".log")
    answer: Answer | None = None
    image_answer: Answer | None = None
    picture_check: dict[str, Any] = {}
    error: str | None = None
    ready: float | None = None
    request_seconds: float | None = None
    needs_image = Modality.IMAGE in plan.model.modalities  # smoke-gemma3-vision too: its tower must run
    served = runner.launch.served_model_name
    started = time.monotonic()
    owned: list[Server] = []
    follower = None
    try:
        with reporter.status(f"starting {plan.engine} {plan.engine_version} ({plan.variant.name})"):
            server = runner.start(owned, log_path, reporter)
            if on_line and log_path.exists():
                follower = _Follower(log_path, on_line)
                follower.start()
            ready = wait_ready(server, timeout)
        base_url = server.url_root + "/v1"
        reporter.detail(f"asking {base_url}/chat/completions for {MAX_TOKENS} tokens")
        asked = time.monotonic()
        logprobs = getattr(runner, "logprobs", True)  # a frontend may refuse them (Xinference 1.4.0)
        try:
            answer = chat(base_url, served, timeout=request_timeout, logprobs=logprobs)
            if needs_image:  # a vision-language model must also see a picture
                reporter.detail("asking again with an image")
                words, image_answer = ask_about_picture(base_url, served, request_timeout, logprobs)
                unseen = picture_unseen(words, image_answer)
                if unseen:
                    error, image_answer = unseen, None
                else:
                    picture_check = {"prompt_tokens_without_picture": words.prompt_tokens}
        finally:
            request_seconds = time.monotonic() - asked
    except StartupError as failure:
        error = failure.reason
    except RequestError as failure:
        error = failure.message
    finally:
        for running in owned:
            running.stop()
        if follower:
            follower.done.set()
            follower.join(timeout=2)
    total = time.monotonic() - started
    passed = answer is not None and (image_answer is not None or not needs_image)
    log = _read(log_path)
    findings = [] if passed else diagnose(f"{log}\n{error or ''}", matrix, engine=plan.engine, family=plan.family)
    diagnosis = render_findings(findings)
    tail = None if passed else "\n".join(log.rstrip().splitlines()[-40:])
    timings = evidence.Timings(build=build_seconds, start_to_ready=ready, request=request_seconds, total=total)
    document = evidence.record(
        plan=plan,
        launch=runner.launch,
        argv=runner.argv(),
        environment=runner.environment(),
        lock=runner.lock(),
        passed=passed,
        timings=timings,
        weights=runner.weights,
        answer=_answers(answer, image_answer, picture_check),
        diagnosis=diagnosis,
        findings=[f.to_json() for f in findings],
        error=error,
        log_path=log_path,
        log_tail=tail,
        when=when,
    )
    evidence.write(document, record_path)
    return SmokeResult(passed, plan, timings, answer, diagnosis, tuple(findings), error, log_path, tail, record_path)


def _answers(answer: Answer | None, image: Answer | None, picture_check: dict[str, Any]) -> dict[str, Any] | None:
    """The evidence's answer: the text one, and the image one under ``image`` with its check."""
    if answer is None:
        return None
    return answer.to_json() | ({"image": image.to_json() | picture_check} if image else {})


def ask_about_picture(base_url: str, served: str, timeout: float, logprobs: bool) -> tuple[Answer, Answer]:
    """The image request's words alone, then with the picture (a tiny PNG as a data URL)."""
    content = image_message()
    words = chat(
        base_url, served, timeout=timeout, content=[p for p in content if p["type"] == "text"], logprobs=logprobs
    )
    return words, chat(base_url, served, timeout=timeout, content=content, logprobs=logprobs)


def picture_unseen(words: Answer, seen: Answer) -> str | None:
    """Why the answer shows the picture was left out, if it does: its prompt is no longer than the
    words alone (an engine or chat template that drops ``image_url`` parts answers anyway).

    None when the engine reports no prompt tokens: the answer alone counts then.
    """
    if words.prompt_tokens is None or seen.prompt_tokens is None or seen.prompt_tokens > words.prompt_tokens:
        return None
    return (
        f"the picture was left out: the image request's prompt has {seen.prompt_tokens} tokens, "
        f"the same words without it {words.prompt_tokens}"
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
    runner: ProcessRunner


def prepare(
    matrix: Matrix,
    host: Host,
    request: PlanRequest,
    *,
    uv: Uv,
    model_path: str | None = None,
    reporter: Reporter | None = None,
    rebuild: bool = False,
) -> Prepared:
    """Plan once, build (or reuse) the environment, find the weights, bind a free loopback port."""
    from envman.build.environments import build

    reporter = reporter or NullReporter()
    plan = Planner(matrix, host).plan(request)
    reporter.info(
        f"{plan.model.name}: {plan.engine} {plan.engine_version} ({plan.variant.name}, {plan.artifact.label})"
    )
    for reason in plan.forced:
        reporter.warn(f"--force: {reason}")
    for warning in plan.warnings:
        reporter.warn(warning)
    built = build(
        matrix, plan.engine, plan.engine_version, plan.variant.name, uv=uv, rebuild=rebuild, reporter=reporter,
        frontend=plan.frontend.key if plan.frontend else "",
    )  # fmt: skip
    weights = weights_for(plan, model_path, reporter)
    bindings = Bindings(weights=str(weights), host=LOOPBACK, port=free_port(), extra_args=plan.variant.smoke_args)
    bound = launch(plan, bindings)
    return Prepared(plan, built, weights, ProcessRunner(bound, built.environment, str(weights)))
