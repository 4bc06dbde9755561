"""Run an engine image and smoke it: start the container, wait until it answers, ask one chat completion.

The server is published on a free port of 127.0.0.1 only. Weights are bind-mounted read-only
at the path the image's command expects. A container that exits before it is ready is
reported with its log tail and the diagnosis of its log.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envman.docker.image import client
from envman.errors import TargetError
from envman.matrix.schema import Matrix
from envman.report import NullReporter, Reporter

PROMPT = "Say hello."


@dataclass(frozen=True)
class SmokeResult:
    image: str
    url: str
    ready_seconds: float
    healthy_seconds: float | None  # when Docker's own HEALTHCHECK said healthy (if waited for)
    reply: str
    response: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "url": self.url,
            "ready_seconds": round(self.ready_seconds, 1),
            "healthy_seconds": None if self.healthy_seconds is None else round(self.healthy_seconds, 1),
            "reply": self.reply,
        }


def _get(url: str, timeout: float = 3.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http://127.0.0.1 only
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0


def chat(url: str, model: str, prompt: str = PROMPT, max_tokens: int = 8, timeout: float = 120.0) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        data: dict[str, Any] = json.loads(response.read())
    return data


def _logs(container: Any, lines: int = 40) -> str:
    try:
        return str(container.logs(tail=lines).decode("utf-8", "replace"))
    except Exception:  # the container may be gone already
        return ""


def smoke(
    image: str,
    *,
    served_model_name: str,
    mounts: Mapping[str, str],
    command: Sequence[str] | None = None,
    port: int = 8000,
    ready_path: str = "/health",
    timeout: float = 600.0,
    wait_healthy: bool = False,
    gpus: bool = False,
    environment: Mapping[str, str] | None = None,
    matrix: Matrix | None = None,
    engine: str | None = None,
    reporter: Reporter | None = None,
) -> SmokeResult:
    """Start ``image`` (its own command unless ``command``), wait for ``ready_path``, send a chat
    completion, stop and remove the container. ``mounts``: host path -> container path, read-only."""
    reporter = reporter or NullReporter()
    api = client()
    kwargs: dict[str, Any] = {}
    if gpus:
        from docker.types import DeviceRequest

        kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    container = api.containers.run(
        image,
        command=list(command) if command else None,
        detach=True,
        ports={f"{port}/tcp": ("127.0.0.1", None)},
        volumes={host: {"bind": inside, "mode": "ro"} for host, inside in mounts.items()},
        environment=dict(environment or {}),
        **kwargs,
    )
    started = time.monotonic()
    try:
        container.reload()
        host_port = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{host_port}"
        with reporter.status(f"waiting for {image} to answer {ready_path}"):
            while _get(url + ready_path) != 200:
                container.reload()
                if container.status in ("exited", "dead"):
                    raise _exited(image, container, matrix, engine)
                if time.monotonic() - started > timeout:
                    raise TargetError(
                        f"{image} did not answer {ready_path} within {timeout:.0f} s:\n{_logs(container)}"
                    )
                time.sleep(1)
        ready = time.monotonic() - started
        healthy = None
        if wait_healthy:
            with reporter.status(f"waiting for Docker's HEALTHCHECK of {image}"):
                while True:
                    container.reload()
                    status = container.attrs["State"].get("Health", {}).get("Status")
                    if status == "healthy":
                        healthy = time.monotonic() - started
                        break
                    if status == "unhealthy" or time.monotonic() - started > timeout:
                        raise TargetError(f"{image}: HEALTHCHECK says {status}:\n{_logs(container)}")
                    time.sleep(1)
        response = chat(url, served_model_name)
        reply = str(response["choices"][0]["message"].get("content") or "")
        return SmokeResult(image, url, ready, healthy, reply, response)
    finally:
        container.remove(force=True)


def _exited(image: str, container: Any, matrix: Matrix | None, engine: str | None) -> TargetError:
    log = _logs(container, 200)
    code = container.attrs["State"].get("ExitCode")
    diagnosis = ""
    if matrix is not None:
        from envman.diagnose import diagnose

        findings = diagnose(log, matrix, engine=engine)
        diagnosis = "".join(f"\n{f.id}: {f.cause}\n  fix: {f.fix}" for f in findings)
    tail = "\n".join(log.rstrip().splitlines()[-25:])
    return TargetError(
        f"{image} exited (status {code}) before it was ready:\n{tail}"
        + (f"\nknown failure:{diagnosis}" if diagnosis else "")
    )


def run_server(
    image: str,
    *,
    name: str,
    command: Sequence[str],
    environment: Mapping[str, str],
    host: str,
    port: int,
    inner_port: int,
    mounts: Mapping[str, str],
    gpus: bool,
) -> Any:
    """Start ``image`` as a server container (not removed when it stops: `down` removes it).

    The container's port is published on ``host:port`` only; weights are mounted read-only.
    """
    api = client()
    kwargs: dict[str, Any] = {}
    if gpus:
        from docker.types import DeviceRequest

        kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return api.containers.run(
        image,
        command=list(command),
        name=name,
        detach=True,
        ports={f"{inner_port}/tcp": (host, port)},
        volumes={source: {"bind": inside, "mode": "ro"} for source, inside in mounts.items()},
        environment=dict(environment),
        labels={"io.envman.server": name},
        **kwargs,
    )


def wait_ready(container: Any, url: str, timeout: float, matrix: Matrix | None, engine: str | None) -> float:
    """Seconds until ``url`` answers 200; the log tail and diagnosis if the container exits first."""
    started = time.monotonic()
    while _get(url) != 200:
        container.reload()
        if container.status in ("exited", "dead"):
            raise _exited(container.image.tags[0] if container.image.tags else "image", container, matrix, engine)
        if time.monotonic() - started > timeout:
            raise TargetError(f"the container did not answer {url} within {timeout:.0f} s:\n{_logs(container)}")
        time.sleep(0.5)
    return time.monotonic() - started


def find(name: str) -> Any | None:
    from docker.errors import NotFound

    try:
        return client().containers.get(name)
    except NotFound:
        return None


def stop_and_remove(container: Any, timeout: int = 10) -> None:
    """Stop (SIGTERM, then SIGKILL after ``timeout`` s) and remove a server container."""
    from docker.errors import NotFound

    try:
        container.stop(timeout=timeout)
    except NotFound:
        return
    with contextlib.suppress(NotFound):
        container.remove(force=True)
