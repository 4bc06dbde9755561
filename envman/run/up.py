"""``envman up``'s run: claim the name, start the engine (a process or a container), wait until it
is ready, record it; stop it when the caller is done, unless it was detached.

:func:`running` is a context manager around one server's life. Inside, the server is ready
and recorded; leaving it normally (a foreground server whose engine exited, or the caller's
Ctrl-C, SIGTERM or SIGHUP, which arrive as exceptions) stops the whole process group or
removes the container and forgets the record. A detached server is released instead: its
guardian lets it outlive envman, and ``envman ps``/``down`` find it by its record.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from envman.build.environments import Environment, build
from envman.engines.base import Launch
from envman.engines.launch import Bindings, launch
from envman.files import ensure_dir
from envman.lock.uv import Uv
from envman.matrix.schema import Accelerator, Matrix
from envman.plan.result import Plan
from envman.report import NullReporter, Reporter
from envman.run import process, servers
from envman.run.server import ProcessServer, Server, _Follower, command_for, start_owned, wait_ready


class Starter(Protocol):
    """Starts a plan's server another way than its engine's own command (a frontend over the engine)."""

    launch: Launch  # what a client here reaches

    def start_in(
        self, python: Path, name: str | None, log_path: Path, owned: list[Server], timeout: float, reporter: Reporter
    ) -> Server:
        """Start it from the environment whose interpreter is ``python``, appending it to ``owned`` at once."""
        ...


@dataclass(frozen=True)
class DockerOptions:
    base_image: str | None = None
    extra_ca: Path | None = None


@dataclass
class Started:
    """A ready server: what runs it, how clients reach it, where its log is."""

    server: Server
    launch: Launch  # as a client on this machine sees it (url, served name); secrets masked when shown
    record: servers.ServerRecord
    log_path: Path
    follower: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # image, container name

    def wait(self) -> int | None:
        """Block until the engine exits on its own; its exit status."""
        if isinstance(self.server, ProcessServer):
            return self.server.spawned.process.wait()
        while (code := self.server.exit_code()) is None:
            time.sleep(0.5)
        return code


def backends() -> dict[str, servers.Backend]:
    """Every way a recorded server can run, for ``ps``, ``down`` and name claims."""
    from envman.docker.serve import ContainerBackend

    return {servers.PROCESS: servers.ProcessBackend(), "container": ContainerBackend()}


def _follow_container(server: Any, on_line: Callable[[str], None]) -> threading.Thread:
    def pump() -> None:
        with contextlib.suppress(Exception):  # the container goes away when it is stopped
            for chunk in server.container.logs(stream=True, follow=True):
                for line in chunk.decode("utf-8", "replace").splitlines():
                    on_line(line)

    thread = threading.Thread(target=pump, name="container-log", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def running(
    matrix: Matrix,
    plan: Plan,
    bindings: Bindings,
    *,
    name: str,
    weights: Path,
    uv: Uv,
    timeout: float,
    detach: bool = False,
    docker: DockerOptions | None = None,
    reporter: Reporter | None = None,
    on_line: Callable[[str], None] | None = None,
    starter: Callable[[Environment], Starter] | None = None,
) -> Iterator[Started]:
    """Start ``plan`` bound to ``bindings`` as server ``name``; yield it once it is ready.

    ``starter`` (given the built environment's interpreter) starts it instead of the engine's own
    command: ``--frontend xinference`` starts Xinference and launches the model through it.
    """
    reporter = reporter or NullReporter()
    registry = backends()
    with servers.claim(name, registry):
        log_path = servers.log_path(name)
        owned: list[Server] = []
        outer = launch(plan, bindings)  # what a client here sees: url, served name
        follower: Any = None
        try:
            if docker is None:
                built = build(
                    matrix, plan.engine, plan.engine_version, plan.variant.name, uv=uv, reporter=reporter,
                    frontend=plan.frontend.key if plan.frontend else "",
                )  # fmt: skip
                reporter.info(f"log: {log_path}")
                if starter is not None:
                    chosen = starter(built.environment)
                    outer = chosen.launch
                    if on_line:
                        ensure_dir(log_path.parent)
                        with log_path.open("ab"):  # the follower reads it while the frontend starts
                            pass
                        follower = _Follower(log_path, on_line)
                        follower.start()
                    server: Server = chosen.start_in(
                        built.environment.python_bin, name, log_path, owned, timeout, reporter
                    )
                else:
                    command = command_for(outer, built.environment.python_bin, name)
                    process_server = start_owned(command, log_path, owned, reporter)  # type: ignore[arg-type]
                    server = process_server
                    if on_line:
                        follower = _Follower(log_path, on_line)
                        follower.start()
                extra: dict[str, Any] = {}
            else:
                server, extra = _start_container(
                    matrix, plan, bindings, name, weights, docker, log_path, owned, reporter
                )
                if on_line:
                    follower = _follow_container(server, on_line)
            with reporter.status(f"waiting for {outer.ready_url}"):
                wait_ready(server, timeout)
            record = servers.ServerRecord(
                name=name,
                model=plan.model.name,
                engine=plan.engine,
                engine_version=str(plan.engine_version),
                variant=plan.variant.name,
                url=outer.url,
                host=bindings.host,
                port=bindings.port,
                pid=server.pid if isinstance(server, ProcessServer) else 0,
                pid_start=None,
                started=time.time(),
                log=str(log_path) if docker is None or not detach else f"docker logs {extra.get('container')}",
                command=list(outer.argv),
                container=extra.get("container"),
                backend=servers.PROCESS if docker is None else "container",
                foreground=not detach,
                owner_pid=None if detach else os.getpid(),
            )
            if record.pid:
                record = servers.ServerRecord(**{**record.__dict__, "pid_start": process.start_time(record.pid)})
            servers.save(record)
            started = Started(server, outer, record, log_path, follower, extra)
            if detach:
                server.detach()  # type: ignore[attr-defined]
                owned.clear()
                yield started
                return
            try:
                yield started
            finally:
                servers.forget(name)
        finally:
            for running_server in owned:
                running_server.stop()
            if isinstance(follower, _Follower):
                follower.done.set()
                follower.join(timeout=2)


def _start_container(
    matrix: Matrix,
    plan: Plan,
    bindings: Bindings,
    name: str,
    weights: Path,
    docker: DockerOptions,
    log_path: Path,
    owned: list[Server],
    reporter: Reporter,
) -> tuple[Server, dict[str, Any]]:
    """The combination's image as the server: weights mounted read-only, published on the bind address."""
    from envman.docker import serve as container_serve
    from envman.docker.image import build_image

    image = build_image(
        matrix, plan.engine, plan.engine_version, plan.variant.name,
        base_image=docker.base_image, extra_ca=docker.extra_ca, reporter=reporter,
        frontend=plan.frontend.key if plan.frontend else "",
    )  # fmt: skip
    inside = f"{container_serve.MODELS_DIR}/{weights.name}"
    inner = container_serve.inner_launch(plan, bindings, inside, weights)
    cname = container_serve.container_name(name)
    server = container_serve.start(
        image.tag,
        inner,
        name=cname,
        host=bindings.host,
        port=bindings.port,
        mounts={str(weights): inside},
        gpus=plan.variant.accelerator is Accelerator.CUDA,
        log_path=log_path,
        owned=owned,
    )
    guardian = server.guardian.pid if server.guardian else 0
    return server, {"container": cname, "image": image.tag, "guardian_pid": guardian}
