"""An Xinference image's entrypoint: start Xinference, register and launch one model, keep serving.

``python -m envman_xinference_serve --port P [--register DOC] --launch BODY -- xinference-local ARGS``
starts ``xinference-local ARGS`` as a child, waits until its supervisor answers on
``127.0.0.1:P``, posts ``DOC`` (a custom-model registration; none for a built-in model) and
``BODY`` (the launch), then waits for the child. The documents are envman's
(:mod:`envman.frontends.xinference` renders them); this module only sends them. SIGTERM and
SIGINT (``docker stop``, Ctrl-C) go to the child's whole process group (Xinference's worker
and model processes), and a failed registration or launch stops it and exits 1 with
Xinference's answer. Standard library only: it runs in the image's environment, as PID 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import FrameType
from typing import Any

START_TIMEOUT = 900.0  # a cold Xinference on 2 CPU cores answered after 25-56 s (FACTS.md)


def _say(text: str) -> None:
    print(f"envman_xinference_serve: {text}", file=sys.stderr, flush=True)


def _call(method: str, url: str, body: Any = None, timeout: float = 30.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (loopback http)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        raw = response.read()
    return json.loads(raw) if raw else None


def _wait_up(root: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"xinference-local exited with {child.returncode} before it answered")
        try:
            _call("GET", f"{root}/v1/models", timeout=5)
            return
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(1)
    raise RuntimeError(f"xinference-local did not answer on {root} within {START_TIMEOUT:.0f} s")


def _stop(child: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def main(argv: list[str]) -> int:
    if "--" not in argv:
        _say("usage: --port P [--register DOC] --launch BODY -- xinference-local ARGS")
        return 2
    cut = argv.index("--")
    options, command = argv[:cut], argv[cut + 1 :]
    settings = dict(zip(options[::2], options[1::2], strict=False))
    if "--port" not in settings or "--launch" not in settings or not command:
        _say("--port, --launch and a command after -- are needed")
        return 2
    root = f"http://127.0.0.1:{int(settings['--port'])}"
    launch = json.loads(settings["--launch"])
    registration = settings.get("--register")
    child = subprocess.Popen(command, start_new_session=True)  # its own group: stopped whole

    def forward(signum: int, _frame: FrameType | None) -> None:
        _stop(child)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        _wait_up(root, child)
        if registration:
            _call("POST", f"{root}/v1/model_registrations/LLM", {"model": registration, "persist": False}, 60)
            _say(f"registered {launch.get('model_name')}")
        started = time.monotonic()
        answer = _call("POST", f"{root}/v1/models", launch, START_TIMEOUT)
        _say(f"launched {answer.get('model_uid') if isinstance(answer, dict) else answer} in "
             f"{time.monotonic() - started:.1f} s with {launch.get('model_engine')}")  # fmt: skip
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")
        _say(f"{error.url} answered {error.code}: {detail[:4000]}")
        _stop(child)
        return 1
    except (RuntimeError, urllib.error.URLError, OSError, ValueError) as error:
        _say(str(error))
        _stop(child)
        return 1
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
