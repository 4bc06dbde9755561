"""The Docker adapter: build an engine image from its generated Dockerfile, through the daemon's API.

The docker SDK is imported here only, inside functions (``envman --help`` must not load it).
A build sends a small context (:mod:`envman.docker.context`), streams the daemon's output
through the reporter, and on failure reports the failing step, its log tail and what
:func:`envman.diagnose.diagnose` recognises in the log.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import Version

from envman.docker import context, dockerfile
from envman.errors import PrerequisiteError, TargetError
from envman.lock import locks
from envman.matrix.combinations import Combination
from envman.matrix.schema import Matrix
from envman.report import NullReporter, Reporter

START_HINT = (
    "start a daemon: `sudo systemctl start docker`, or as root `dockerd >/var/log/dockerd.log 2>&1 &` "
    "(scripts/ci-docker-setup installs and starts one); DOCKER_HOST names a remote one"
)
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]+)$")


def client() -> Any:
    """A docker SDK client whose daemon answers, else :class:`PrerequisiteError` (exit 3)."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise PrerequisiteError("the docker Python package is not installed", hint="pip install docker") from None
    try:
        api = docker.from_env(timeout=600)
        api.ping()
    except DockerException as error:
        cause = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PrerequisiteError(f"no Docker daemon answers: {cause}", hint=START_HINT) from None
    return api


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    tag: str
    seconds: float
    steps: int
    cached_steps: tuple[int, ...]  # the steps the daemon took from its cache ("Using cache")
    step_images: Mapping[int, str] = field(default_factory=dict)  # step -> the layer image it made or reused
    step_texts: Mapping[int, str] = field(default_factory=dict)  # step -> its instruction
    log: str = ""

    def step_running(self, text: str) -> int:
        """The number of the first step whose instruction contains ``text``."""
        return next(n for n, instruction in sorted(self.step_texts.items()) if text in instruction)

    def to_json(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "tag": self.tag,
            "seconds": round(self.seconds, 1),
            "steps": self.steps,
            "cached_steps": list(self.cached_steps),
        }


def _lines(stream: Iterator[Mapping[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for chunk in stream:
        text = chunk.get("stream")
        if isinstance(text, str):
            for line in text.splitlines():
                yield line, chunk
        else:
            yield "", chunk


def build_context_image(
    dockerfile_text: str,
    target: dockerfile.Target,
    lock_dir: Path,
    *,
    tag: str | None = None,
    base_image: str | None = None,
    extra_ca: Path | None = None,
    matrix: Matrix | None = None,
    nocache: bool = False,
    network_mode: str | None = None,
    reporter: Reporter | None = None,
) -> BuildResult:
    """Build ``dockerfile_text`` for ``target`` (the committed Dockerfile, or a variation of it).

    ``network_mode``: the build containers' network (``host`` reaches a wheel server on the host's loopback).
    """
    reporter = reporter or NullReporter()
    api = client()
    tag = tag or target.tag
    buildargs = {"BASE_IMAGE": dockerfile.image_ref(base_image)} if base_image else {}
    log: list[str] = []
    step_images: dict[int, str] = {}
    step_texts: dict[int, str] = {}
    cached: list[int] = []
    step, steps, step_start = 0, 0, 0
    image_id = ""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="envman-docker-") as tmp:
        context.assemble(target, dockerfile_text, lock_dir, Path(tmp), extra_ca)
        stream = api.api.build(
            path=tmp, dockerfile="Dockerfile", tag=tag, buildargs=buildargs, rm=True, forcerm=True,
            decode=True, nocache=nocache, pull=False, network_mode=network_mode,
        )  # fmt: skip
        with reporter.status(f"building {tag}"):
            for line, chunk in _lines(stream):
                if "error" in chunk:
                    log.append(str(chunk["error"]))
                    raise _failure(tag, log, step_start, matrix, target.combination.engine)
                if not line.strip():
                    continue
                log.append(line)
                reporter.detail(line)
                match = _STEP.match(line)
                if match:
                    step, steps, step_start = int(match.group(1)), int(match.group(2)), len(log) - 1
                    step_texts[step] = match.group(3)
                    reporter.info(line)
                elif line.strip() == "---> Using cache":
                    cached.append(step)
                elif line.strip().startswith("---> ") and step and re.fullmatch(r"---> [0-9a-f]{12}", line.strip()):
                    step_images[step] = line.strip()[5:]
                built = _BUILT.match(line)
                if built:
                    image_id = built.group(1)
    if not image_id:
        raise TargetError(f"building {tag} ended without an image id:\n" + "\n".join(log[-20:]))
    full_id = api.images.get(tag).id
    return BuildResult(
        image_id=str(full_id),
        tag=tag,
        seconds=time.monotonic() - started,
        steps=steps,
        cached_steps=tuple(cached),
        step_images=step_images,
        step_texts=step_texts,
        log="\n".join(log),
    )


def _failure(tag: str, log: list[str], step_start: int, matrix: Matrix | None, engine: str) -> TargetError:
    step_log = log[step_start:]
    tail = "\n".join(step_log[-25:])
    diagnosis = ""
    if matrix is not None:
        from envman.diagnose import diagnose, render

        diagnosis = "\n" + (render(diagnose("\n".join(log), matrix, engine=engine)) or "")
    step = step_log[0] if step_log else "(before the first step)"
    return TargetError(
        f"docker build of {tag} failed at {step}\n{tail}"
        + (f"\nknown failure:{diagnosis}" if diagnosis.strip() else ""),
        hint="rebuild with -v to see every line; `envman diagnose LOG` explains known engine failures",
    )


def build_image(
    matrix: Matrix,
    engine: str,
    version: Version | str,
    variant: str,
    *,
    base_image: str | None = None,
    extra_ca: Path | None = None,
    nocache: bool = False,
    frontend: str = "",
    reporter: Reporter | None = None,
) -> BuildResult:
    """Build ``envman/<engine>:<version>-<variant>`` (under ``frontend`` ``xinference==4.1.0``:
    ``envman/xinference:4.1.0-<engine>-<version>-<variant>``) from its committed Dockerfile and
    return the result (``.image_id``). A missing or stale Dockerfile is rendered afresh, with a warning."""
    reporter = reporter or NullReporter()
    matrix = dockerfile.public_matrix(matrix.path)
    combination = Combination(engine, Version(str(version)), variant, frontend)
    lock_dir = locks.lockfiles_dir(matrix)
    target = dockerfile.target_for(matrix, combination, lock_dir=lock_dir)
    rendered = dockerfile.render(target)
    committed = dockerfile.dockerfiles_dir(matrix) / target.filename
    text = committed.read_text(encoding="utf-8") if committed.is_file() else None
    if text != rendered:
        state = "is stale" if text is not None else "does not exist"
        reporter.warn(f"{committed} {state}; building from a fresh render (commit it with `envman dockerfile`)")
        text = rendered
    return build_context_image(
        text,
        target,
        lock_dir,
        base_image=base_image,
        extra_ca=extra_ca,
        matrix=matrix,
        nocache=nocache,
        reporter=reporter,
    )
