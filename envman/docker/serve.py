"""`envman up --docker`: a combination's image as the server, weights mounted read-only.

Inside the container the engine listens on every interface at port 8000; the container
publishes it on ``host:port`` only (127.0.0.1 by default). GPUs are requested for CUDA
variants. A container that exits before it answers is reported with its log and diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envman.errors import UsageError
from envman.matrix.schema import Accelerator, Matrix
from envman.plan.result import Plan
from envman.report import NullReporter, Reporter

INNER_PORT = 8000
MODELS_DIR = "/models"


@dataclass(frozen=True)
class ContainerServer:
    container: Any  # docker.models.containers.Container
    name: str  # the container's name
    image: str
    argv: tuple[str, ...]
    ready_seconds: float


def container_name(server: str) -> str:
    return f"envman-{server}"


def start(
    matrix: Matrix,
    plan: Plan,
    replan: Callable[[str, str, int], Plan],
    weights: Path,
    *,
    server: str,
    host: str,
    port: int,
    timeout: float,
    base_image: str | None = None,
    extra_ca: Path | None = None,
    reporter: Reporter | None = None,
) -> ContainerServer:
    """Build (or reuse) the image, start the server container, wait until it answers.

    ``replan(model_path, bind, port)`` plans the same combination for inside the container.
    """
    from envman.docker import container as containers
    from envman.docker.image import build_image

    reporter = reporter or NullReporter()
    image = build_image(
        matrix, plan.engine, plan.engine_version, plan.variant.name,
        base_image=base_image, extra_ca=extra_ca, reporter=reporter,
    )  # fmt: skip
    inside = f"{MODELS_DIR}/{weights.name}"
    inner = replan(inside, "0.0.0.0", INNER_PORT)  # noqa: S104 (inside the container; published on host only)
    name = container_name(server)
    existing = containers.find(name)
    if existing is not None:
        if existing.status == "running":
            raise UsageError(f"a server named {server!r} is running in Docker", hint=f"`envman down {server}` it first")
        containers.stop_and_remove(existing)
    box = containers.run_server(
        image.tag,
        name=name,
        command=inner.command,  # "python" is the image's interpreter: its PATH leads with the venv
        environment=dict(inner.env),
        host=host,
        port=port,
        inner_port=INNER_PORT,
        mounts={str(weights): inside},
        gpus=plan.variant.accelerator is Accelerator.CUDA,
    )
    url = plan.url.removesuffix("/v1") + plan.ready_path
    try:
        with reporter.status(f"waiting for {url} ({image.tag})"):
            ready = containers.wait_ready(box, url, timeout, matrix, plan.engine)
    except BaseException:
        containers.stop_and_remove(box)
        raise
    return ContainerServer(box, name, image.tag, tuple(inner.command), ready)
