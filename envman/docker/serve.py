"""The container backend: a combination's image as the server, weights mounted read-only.

:class:`ContainerServer` is a :class:`envman.run.server.Server`, so readiness, smoke runs and
``up`` treat it as they treat a local process. Inside the container the engine listens on
every interface at the image's port; Docker publishes it on ``host:port`` only (127.0.0.1
by default), and refuses to start when that port is taken, so what answers is the container.
A guardian process watches envman: if envman dies without detaching, the container is
removed (:mod:`envman.run.guard`). GPUs are requested for CUDA variants.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envman.docker import container as containers
from envman.docker import images
from envman.docker.image import BuildResult
from envman.engines.base import Launch
from envman.engines.launch import Bindings, launch
from envman.errors import UsageError
from envman.files import atomic_write
from envman.frontends import serve as frontends
from envman.plan.result import Plan
from envman.report import Reporter
from envman.run import process
from envman.run.ports import free_port
from envman.run.server import LOOPBACK, Server
from envman.run.servers import ServerRecord

INNER_PORT = 8000
MODELS_DIR = "/models"
_REMOVE = "import docker, sys; c = docker.from_env().containers.get(sys.argv[1]); c.remove(force=True)"
_WAIT = "import docker, sys; docker.from_env().containers.get(sys.argv[1]).wait()"


def inner_launch(plan: Plan, bindings: Bindings, inside: str, weights: Path) -> Launch:
    """What the container runs for ``plan``: the engine's command bound to 0.0.0.0 and the image's
    port, serving ``inside`` (where ``weights`` on this machine are mounted); under a frontend, its
    launcher, which registers and launches the model (the chat template read from ``weights`` here)."""
    if plan.frontend is not None:
        facts = images.facts()
        return frontends.container_launch(
            plan,
            weights=inside,
            port=INNER_PORT,
            home=f"/home/{facts.user}/.xinference",
            chat_template=frontends.read_chat_template(weights),
            served_model_name=bindings.served_model_name,
        )
    return launch(
        plan,
        Bindings(
            weights=inside,
            host="0.0.0.0",  # noqa: S104 - inside the container; published on the bind address only
            port=INNER_PORT,
            served_model_name=bindings.served_model_name,
            api_key=bindings.api_key,
            extra_args=bindings.extra_args,
        ),
    )


def container_name(server: str) -> str:
    return f"envman-{server}"


@dataclass
class ContainerServer:
    """A server container, tied to envman by a guardian until it is detached or stopped."""

    container: Any  # docker.models.containers.Container
    name: str
    image: str
    launch: Launch  # as run inside the container
    url_root: str  # as published on the host
    log_path: Path | None = None  # the container's log is copied here when it is stopped
    started: float = field(default_factory=time.monotonic)
    ready_seconds: float | None = None
    guardian: process.Spawned | None = None
    _saved_log: str | None = None

    @property
    def ready_path(self) -> str:
        return self.launch.ready_path

    @property
    def served_model_name(self) -> str:
        return self.launch.served_model_name

    @property
    def log_hint(self) -> str:
        return str(self.log_path) if self.log_path else f"docker logs {self.name}"

    def exit_code(self) -> int | None:
        try:
            self.container.reload()
        except Exception:  # removed meanwhile: docker.errors.NotFound
            return -9
        if self.container.status in ("exited", "dead"):
            return int(self.container.attrs["State"].get("ExitCode", 1))
        return None

    def log(self) -> str:
        if self._saved_log is not None:
            return self._saved_log
        try:
            return str(self.container.logs().decode("utf-8", "replace"))
        except Exception:  # the container is gone
            return ""

    def answers_from_self(self) -> tuple[bool, str | None]:
        return self.exit_code() is None, None  # Docker bound the published port for this container

    def detach(self) -> None:
        if self.guardian is not None:
            self.guardian.detach()
            process.stop_group(self.guardian.pid, self.guardian.process, interrupt_timeout=0.5)

    def stop(self) -> int | None:
        code = self.exit_code()
        self._saved_log = self.log()
        if self.log_path is not None:
            with contextlib.suppress(Exception):
                atomic_write(self.log_path, self._saved_log)
        containers.stop_and_remove(self.container)
        if self.guardian is not None:
            self.guardian.release()
            process.stop_group(self.guardian.pid, self.guardian.process, interrupt_timeout=0.5)
        return code


def start(
    image: str,
    inner: Launch,
    *,
    name: str,
    host: str,
    port: int,
    mounts: Mapping[str, str],
    gpus: bool,
    environment: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    owned: list[Server] | None = None,
) -> ContainerServer:
    """Start ``image`` running ``inner`` as container ``name``, published on ``host:port``.

    The server is appended to ``owned`` as soon as it exists, so the caller's ``finally``
    stops it whatever happens next.
    """
    existing = containers.find(name)
    if existing is not None:
        if existing.status == "running":
            raise UsageError(f"a container named {name!r} is running", hint="`envman down NAME` it first")
        containers.stop_and_remove(existing)
    box = containers.run_server(
        image,
        name=name,
        command=inner.argv,  # "python" is the image's interpreter: its PATH leads with the venv
        environment={**inner.env, **(environment or {})},
        host=host,
        port=port,
        inner_port=INNER_PORT,
        mounts=mounts,
        gpus=gpus,
    )
    server = ContainerServer(box, name, image, inner, f"http://{LOOPBACK if host in ('0.0.0.0', '') else host}:{port}")  # noqa: S104
    server.log_path = log_path
    if owned is not None:
        owned.append(server)
    guard_log = log_path.with_suffix(".guard.log") if log_path else Path(os.devnull)
    server.guardian = process.spawn(
        [sys.executable, "-I", "-c", _WAIT, name],
        dict(os.environ),  # DOCKER_HOST and friends
        guard_log,
        on_orphan=[sys.executable, "-I", "-c", _REMOVE, name],
    )
    return server


@dataclass
class ContainerRunner:
    """A smoke run's server as a container of the combination's image (a :class:`~envman.run.smoke.Runner`)."""

    launch: Launch  # inside the container
    image: BuildResult
    mounts: Mapping[str, str]
    gpus: bool
    weights: str
    lock_info: Mapping[str, Any]
    environment_vars: Mapping[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, Any]:
        return {"image": self.image.tag, "image_id": self.image.image_id}

    def lock(self) -> dict[str, Any]:
        return dict(self.lock_info)

    def argv(self) -> list[str]:
        return list(self.launch.argv)

    def start(self, owned: list[Server], log_path: Path, reporter: Reporter) -> Server:
        name = f"envman-smoke-{secrets.token_hex(4)}"
        return start(
            self.image.tag,
            self.launch,
            name=name,
            host=LOOPBACK,
            port=free_port(),
            mounts=self.mounts,
            gpus=self.gpus,
            environment=self.environment_vars,
            log_path=log_path,
            owned=owned,
        )


class ContainerBackend:
    """How `envman ps`/`down` check and stop a server container (a :class:`~envman.run.servers.Backend`)."""

    def alive(self, record: ServerRecord) -> bool:
        found = containers.find(record.container or "")
        return found is not None and found.status == "running"

    def stop(self, record: ServerRecord, interrupt_timeout: float = 10.0, terminate_timeout: float = 5.0) -> bool:
        found = containers.find(record.container or "")
        running = found is not None and found.status == "running"
        if found is not None:
            containers.stop_and_remove(found, int(interrupt_timeout))
        return running
