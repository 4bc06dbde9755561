"""Server containers through the docker SDK: start one, find one by name, stop and remove it.

The server is published on ``host:port`` only. Weights are bind-mounted read-only at the
path the image's command expects. Readiness, smoke requests and diagnosis are the run
stage's (:mod:`envman.run.server`, :mod:`envman.run.smoke`), the same as for a process.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from envman.docker.image import client
from envman.errors import TargetError


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
        command=list(command) or None,  # empty: the image's own CMD
        name=name,
        detach=True,
        ports={f"{inner_port}/tcp": (host, port)},
        volumes={source: {"bind": inside, "mode": "ro"} for source, inside in mounts.items()},
        environment=dict(environment),
        labels={"io.envman.server": name},
        **kwargs,
    )


def wait_healthy(container: Any, timeout: float) -> float:
    """Seconds until Docker's own HEALTHCHECK says healthy; TargetError if unhealthy or too slow."""
    started = time.monotonic()
    while True:
        container.reload()
        status = container.attrs["State"].get("Health", {}).get("Status")
        if status == "healthy":
            return time.monotonic() - started
        if status == "unhealthy" or time.monotonic() - started > timeout:
            raise TargetError(f"{container.name}: HEALTHCHECK says {status}")
        time.sleep(1)


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
