"""Running the cells of a verify sweep: resumable, in parallel, with progress.

A cell already proven (passed or failed) for the same lock digest, the same smoke-model
digest and the same launch (the sources of envman's adapter and launcher for the engine) is
not run again: its outcome comes from the sweep state,
``$ENVMAN_HOME/verify/state.json`` (one entry per cell, written atomically after each cell
under a file lock, so two sweeps in one home do not lose each other's cells). A state file
that cannot be read is moved aside as ``state.json.unreadable-<time>`` and reported, never
silently dropped. Cells run in engine × version order, so each environment is built once
and then serves every family's cell.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from envman import paths
from envman.errors import EnvmanError
from envman.files import atomic_write
from envman.hardware.host import Host
from envman.lock.uv import Uv
from envman.matrix.schema import Matrix
from envman.report import NullReporter, Reporter
from envman.verify import versions
from envman.verify.cases import Case, Outcome, cases, sample
from envman.verify.versions import VersionSpec

STATE_SCHEMA = 1


def state_path() -> Path:
    return paths.home() / "verify" / "state.json"


class State:
    """The proven cells of earlier sweeps, keyed by :attr:`Case.key`."""

    def __init__(self, path: Path, reporter: Reporter) -> None:
        self.path = path
        self.reporter = reporter
        self._mutex = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
            if (
                not isinstance(data, dict)
                or data.get("schema") != STATE_SCHEMA
                or not isinstance(data.get("cells"), dict)
            ):
                raise ValueError("not a sweep state of this envman")
            cells: dict[str, Any] = data["cells"]
            return cells
        except ValueError as error:
            aside = self.path.with_name(f"{self.path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
            os.replace(self.path, aside)
            self.reporter.warn(f"the sweep state {self.path} could not be read ({error}); moved it to {aside}")
            return {}

    def lookup(self, case: Case, lock_digest: str, model_digest: str, launch_digest: str) -> Outcome | None:
        with self._mutex:
            entry = self._read().get(case.key)
        wanted = {"lock_digest": lock_digest, "model_digest": model_digest, "launch_digest": launch_digest}
        if not entry or any(entry.get(k) != v for k, v in wanted.items()):
            return None
        if entry.get("status") not in ("pass", "fail"):
            return None
        return Outcome(
            case, entry["status"], float(entry.get("seconds", 0.0)), entry.get("detail", ""), entry.get("evidence"),
            entry.get("answer"), entry.get("error") or _answer_error(entry.get("cause")), lock_digest, model_digest,
            launch_digest, True,
            entry.get("when", ""), entry.get("cause"),
        )  # fmt: skip

    def save(self, outcome: Outcome) -> None:
        if outcome.status == "skip" or not outcome.lock_digest or outcome.timed_out:
            return
        from filelock import FileLock

        entry = {k: v for k, v in asdict(outcome).items() if k not in ("case", "resumed")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._mutex, FileLock(str(self.path.with_suffix(".lock"))):
            cells = self._read()
            cells[outcome.case.key] = entry
            atomic_write(self.path, json.dumps({"schema": STATE_SCHEMA, "cells": cells}, indent=1, sort_keys=True))


def launch_digest(engine: str) -> str:
    """The sources that decide how envman starts ``engine``: its adapter and the launchers it names."""
    import hashlib
    import inspect

    from envman.engines.base import adapter_for

    source = Path(inspect.getfile(type(adapter_for(engine))))
    text = source.read_text(encoding="utf-8")
    digest = hashlib.sha256(text.encode())
    for launcher in sorted((Path(__file__).parent.parent / "engines" / "launchers").glob("*.py")):
        if launcher.stem in text:
            digest.update(launcher.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Progress:
    index: int  # 1-based, in the order cells finish
    total: int
    outcome: Outcome


_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception): \S")


_ANSWERED = re.compile(r"answered \d{3}: (?P<body>\{.*\})\s*$", re.DOTALL)


def _answer_error(cause: str | None) -> str | None:
    """The message of an OpenAI-style error answer (``{"error": {"message": …}}``) in envman's cause.

    What the engine said when it refused the smoke request but logged nothing of it (vLLM 0.32.0
    on smoke-gpt_oss answers 400 "Token id 200008 is out of vocabulary" with a clean log).
    """
    found = _ANSWERED.search(cause or "")
    if not found:
        return None
    try:
        body = json.loads(found["body"])
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    if message is None and isinstance(body, dict):
        message = body.get("detail") if isinstance(body.get("detail"), str) else body.get("message")
    return message.strip() if isinstance(message, str) and message.strip() else None


def _engine_error(findings: tuple[Any, ...], log_tail: str | None, cause: str | None = None) -> str | None:
    """The engine's own words: the log line a signature matched, else the first Python exception
    line of the log (the root cause: a server thread dying of it raises again later), else the
    message of the engine's error answer to the smoke request, else the last log line naming an error.

    None when the engine said nothing of it (killed by SIGILL before a line was written): envman's
    own description of the exit is the detail, not the engine's error.
    """
    for finding in findings:
        if finding.line and not str(finding.id).startswith("known-bad:"):  # not the matrix quoting itself
            return str(finding.line).strip()
    lines = (log_tail or "").splitlines()
    for line in lines:
        if _EXCEPTION_LINE.match(line):
            return line.strip()
    answered = _answer_error(cause)
    if answered:
        return answered
    for line in reversed(lines):
        lowered = line.lower()
        if "error" in lowered or "fatal" in lowered or "exception" in lowered:
            return line.strip()
    return None


def run_case(
    matrix: Matrix, host: Host, case: Case, *, uv: Uv, state: State | None, force: bool, timeout: float,
    reporter: Reporter,
) -> Outcome:  # fmt: skip
    from envman.build.environments import resolve_lock
    from envman.plan.request import PlanRequest
    from envman.run.smoke import prepare, smoke
    from envman.synth.cache import digest

    started = time.monotonic()
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    model_digest = digest(matrix.models[case.model])
    launched = launch_digest(case.engine)
    lock_digest = None
    try:
        lock_digest = resolve_lock(matrix, case.engine, case.version, case.variant, uv, reporter).digest
        if state is not None:
            proven = state.lookup(case, lock_digest, model_digest, launched)
            if proven is not None:
                return proven
        request = PlanRequest(model=case.model, engine=case.engine, version=str(case.version), force=force)
        prepared = prepare(matrix, host, request, uv=uv, reporter=reporter)
        if prepared.plan.variant.name != case.variant:
            return Outcome(case, "skip", 0.0, f"the planner chose the {prepared.plan.variant.name} variant here")
        result = smoke(matrix, prepared.plan, prepared.runner, timeout, reporter, build_seconds=prepared.build.seconds)
    except EnvmanError as error:
        first = error.message.strip().splitlines()[0] if error.message.strip() else "failed"
        return Outcome(case, "fail", time.monotonic() - started, error.message, None, None, first, lock_digest,
                       model_digest, launched, when=when)  # fmt: skip
    if result.passed and result.answer is not None:
        detail = f"{result.answer.completion_tokens} tokens: {result.answer.text!r}"
        return Outcome(case, "pass", result.seconds, detail, str(result.evidence), result.answer.text, None,
                       lock_digest, model_digest, launched, when=when)  # fmt: skip
    error_line = _engine_error(result.findings, result.log_tail, result.error)
    return Outcome(case, "fail", result.seconds, result.diagnosis or result.error or "failed", str(result.evidence),
                   None, error_line, lock_digest, model_digest, launched, when=when, cause=result.error)  # fmt: skip


def run(
    matrix: Matrix,
    host: Host,
    runnable: list[Case],
    *,
    jobs: int = 1,
    timeout: float = 600,
    resume: bool = True,
    force: bool = False,
    reporter: Reporter | None = None,
    on_done: Callable[[Progress], None] | None = None,
) -> list[Outcome]:
    """Run (or resume) every cell; ``on_done`` hears each as it finishes."""
    from envman.lock.uv import Uv, find_uv

    reporter = reporter or NullReporter()
    if not runnable:
        return []
    uv = Uv(find_uv(), reporter)  # once, before the threads (the lookup is not thread-safe in the uv package)
    state = State(state_path(), reporter)
    ordered = sorted(runnable, key=lambda c: (c.engine, c.variant, c.version, c.family))
    outcomes: list[Outcome] = []
    count = threading.Lock()

    def one(case: Case) -> Outcome:
        outcome = run_case(
            matrix, host, case, uv=uv, state=state if resume else None, force=force or case.below_floor,
            timeout=timeout, reporter=reporter,
        )  # fmt: skip
        if not outcome.resumed:
            state.save(outcome)
        with count:
            outcomes.append(outcome)
            if on_done:
                on_done(Progress(len(outcomes), len(ordered), outcome))
        return outcome

    if jobs <= 1:  # in this thread: Ctrl-C reaches the smoke loop, which stops its server
        for case in ordered:
            one(case)
        return outcomes
    # Daemon workers, joined in short waits: a signal reaches this thread and ends the process
    # at once (a ThreadPoolExecutor would wait for every running cell first); each cell's
    # guardian then stops its server, as when envman dies.
    work: queue.SimpleQueue[Case] = queue.SimpleQueue()
    for case in ordered:
        work.put(case)
    failed: list[BaseException] = []

    def worker() -> None:
        while not failed:
            try:
                case = work.get_nowait()
            except queue.Empty:
                return
            try:
                one(case)
            except BaseException as error:  # re-raised in the main thread below
                failed.append(error)

    threads = [threading.Thread(target=worker, name=f"verify-{i}", daemon=True) for i in range(min(jobs, len(ordered)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    if failed:
        raise failed[0]
    return outcomes


def sweep_versions(
    matrix: Matrix, host: Host, spec: VersionSpec, engine: str | None
) -> dict[tuple[str, str], dict[Version, str | None]]:
    """Per (engine, variant) this host runs, the releases ``spec`` selects (from the package index)."""
    found: dict[tuple[str, str], dict[Version, str | None]] = {}
    for name, eng in matrix.engines.items():
        if engine and name != engine:
            continue
        for var in eng.variants.values():
            if var.accelerator is host.accelerator and host.os in var.os and host.arch in var.arch:
                found[(name, var.name)] = versions.releases(matrix, host, name, var.name, spec)
    return found


def verify(
    matrix: Matrix,
    host: Host,
    *,
    family: str | None = None,
    engine: str | None = None,
    spec: VersionSpec | None = None,
    jobs: int = 1,
    timeout: float = 600,
    resume: bool = True,
    one_per_engine: bool = False,
    reporter: Reporter | None = None,
    on_done: Callable[[Progress], None] | None = None,
) -> list[Outcome]:
    """Smoke the known-good cells (or, with ``spec``, the swept releases); every outcome, in report order."""
    swept = sweep_versions(matrix, host, spec, engine) if spec is not None else None
    below = spec is not None and not spec.every
    runnable, skipped = cases(matrix, host, family=family, engine=engine, versions=swept, below_floor=below)
    if one_per_engine:
        runnable, skipped = sample(runnable, skipped)
    total = len(runnable) + len(skipped)
    for i, outcome in enumerate(skipped, 1):
        if on_done:
            on_done(Progress(i, total, outcome))

    def shifted(p: Progress) -> None:
        if on_done:
            on_done(Progress(p.index + len(skipped), total, p.outcome))

    ran = run(matrix, host, runnable, jobs=jobs, timeout=timeout, resume=resume, force=spec is not None,
              reporter=reporter, on_done=shifted)  # fmt: skip
    return sorted([*skipped, *ran], key=lambda o: o.case)
