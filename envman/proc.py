"""The one subprocess seam: argv lists only, explicit environments, output kept for errors.

Nothing in envman calls :mod:`subprocess` with ``shell=True``; commands are logged
shell-quoted, their output is captured (or streamed with ``-v``) and replayed when they
fail.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from envman.errors import PrerequisiteError, TargetError
from envman.report import NullReporter, Reporter


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr interleaved

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def child_env(extra: Mapping[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment plus ``extra``, minus ``drop``."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    reporter: Reporter | None = None,
    stream: bool = False,
    timeout: float | None = None,
    check: bool = True,
    what: str | None = None,
) -> Result:
    """Run ``argv`` and return its output; raise :class:`TargetError` with the tail if it fails.

    ``stream`` copies the output to stderr as it comes (``-v``); it is captured either way.
    """
    reporter = reporter or NullReporter()
    command = shlex.join(argv)
    reporter.detail(f"$ {command}")
    try:
        process = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            text=True,
            errors="replace",
        )
    except FileNotFoundError:
        raise PrerequisiteError(
            f"{argv[0]} is not installed or not on PATH", hint=f"needed to run: {command}"
        ) from None
    chunks: list[str] = []
    assert process.stdout is not None
    watchdog = threading.Timer(timeout, process.kill) if timeout else None
    if watchdog:
        watchdog.start()
    try:
        for line in process.stdout:
            chunks.append(line)
            if stream:
                sys.stderr.write(line)
        process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        if watchdog:
            watchdog.cancel()
    if watchdog is not None and watchdog.finished.is_set() and process.returncode < 0:
        raise TargetError(f"{what or argv[0]} did not finish within {timeout:g} s", hint=f"command: {command}")
    result = Result(tuple(argv), process.returncode, "".join(chunks))
    if check and result.returncode != 0:
        raise TargetError(
            f"{what or argv[0]} failed (exit {result.returncode}):\n{result.tail()}",
            hint=f"command: {command}",
        )
    return result
