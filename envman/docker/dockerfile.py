"""Generated Dockerfiles: one per known-good engine × version × variant, in ``dockerfiles/``.

A Dockerfile is rendered from the matrix (public index defaults, no user overrides), the
committed lockfile and ``images.toml``; the same inputs give the same bytes, so
``envman dockerfile --check`` can tell a stale one by rendering it again. Layers go from
what changes least to what changes most: system packages and uv, then the lockfile and
``uv pip sync --require-hashes`` (the big layer), then the launcher, environment flags, user,
health check, command and labels, so changing a flag reuses the dependency layer.

Every value that reaches the file is checked or quoted: control characters (a newline would
start a new instruction, even in a header comment) are refused, exec-form instructions are
JSON, ``ENV``/``LABEL`` values are double-quoted with ``\\``, ``"`` and ``$`` escaped, shell
words are shlex-quoted. Values that go unquoted into a path, a ``docker run -v`` spec or a URL
(weights path, ready path, system packages, launcher modules) must be plain names.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from envman import generated
from envman.docker import images
from envman.docker.images import Base, ImageFacts
from envman.engines.launch import Bindings, launch
from envman.errors import ConfigError, UsageError
from envman.files import atomic_write
from envman.generated import Expected, Problem, same_text
from envman.hardware.host import Host
from envman.lock import lockfile, locks
from envman.lock.lockfile import Lockfile
from envman.matrix import combinations
from envman.matrix.combinations import Combination
from envman.matrix.schema import Accelerator, Engine, Format, Matrix, Modality, Model, Variant
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest

SUFFIX = ".Dockerfile"
EXTRA_CA_DIR = "dockerfiles/extra-ca"  # context path every Dockerfile COPYs CA certificates from
LAUNCHERS_DIR = "envman/engines/launchers"  # context path of envman's launcher modules
MODELS_DIR = "/models"
HEALTH_START_PERIOD = "10m"  # a large model loads for minutes; failures before this do not count

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*\Z")
_MOUNT_TARGET = re.compile(r"/[A-Za-z0-9._+/-]+\Z")  # no ":" or ",": they end a -v / --mount field
_URL_PATH = re.compile(r"/[A-Za-z0-9._~/-]*\Z")  # a path only: no "@host", query or fragment
_DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+\Z")  # Debian policy 5.6.1; never an apt option
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def dockerfiles_dir(matrix: Matrix) -> Path:
    """``dockerfiles/`` beside matrix.toml (``ENVMAN_DOCKERFILES`` overrides)."""
    configured = os.environ.get("ENVMAN_DOCKERFILES")
    return Path(configured) if configured else Path(matrix.path).parent / "dockerfiles"


def public_matrix(path: Path | str) -> Matrix:
    """matrix.toml without the user's index overrides: a committed Dockerfile must not depend on
    who rendered it (overrides are per site; a local find-links folder cannot reach a build)."""
    from envman.matrix.load import parse_matrix

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read matrix file {path}: {error.strerror}") from None
    return parse_matrix(text, path)


def image_tag(combination: Combination) -> str:
    return f"envman/{combination.engine}:{combination.version}-{combination.variant}"


def filename(combination: Combination) -> str:
    return f"{combination.engine}-{combination.version}-{combination.variant}{SUFFIX}"


# -- quoting -------------------------------------------------------------------------


def safe(value: str, what: str) -> str:
    """``value`` if it has no control character; a newline would end a Dockerfile line."""
    if _CONTROL.search(value):
        raise UsageError(
            f"{what} {value!r} contains a control character (newline, tab …); it cannot go into a Dockerfile",
            hint="remove it; quotes and $ are fine, they are escaped",
        )
    return value


def exec_form(argv: Sequence[str], what: str = "argument") -> str:
    """A JSON array: Docker neither splits nor substitutes exec-form words."""
    return json.dumps([safe(a, what) for a in argv])


def quoted(value: str, what: str = "value") -> str:
    """A double-quoted ENV/LABEL value; ``$`` is escaped, so no variable is substituted."""
    escaped = safe(value, what).replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def env_name(name: str) -> str:
    if not _ENV_NAME.match(name):
        raise UsageError(
            f"environment variable name {name!r} is not valid",
            hint="use letters, digits and _, not starting with a digit",
        )
    return name


def image_ref(value: str) -> str:
    if not _IMAGE_REF.match(value):
        raise UsageError(f"{value!r} is not an image reference", hint="e.g. python:3.11-slim-bookworm")
    return value


def shell_words(argv: Sequence[str], what: str = "value") -> str:
    return shlex.join(safe(a, what) for a in argv)


def plain(value: str, pattern: re.Pattern[str], what: str, reason: str, hint: str) -> str:
    """``value`` if it matches ``pattern``: for values that go into a path, a mount spec or a URL unquoted."""
    if not pattern.match(safe(value, what)):
        raise ConfigError(f"{what} {value!r} {reason}", hint=hint)
    return value


def comment(text: str) -> str:
    """A header comment line: a newline in a value would end the comment and start an instruction."""
    return "# " + safe(text, "header value") if text else "#"


def env_instruction(env: Mapping[str, str]) -> str:
    pairs = [f"{env_name(k)}={quoted(v, f'environment value of {k}')}" for k, v in env.items()]
    return "ENV " + " \\\n    ".join(pairs)


def label_instruction(labels: Mapping[str, str]) -> str:
    pairs = [f"{k}={quoted(v, f'label {k}')}" for k, v in labels.items()]
    return "LABEL " + " \\\n      ".join(pairs)


# -- what one Dockerfile is made of ----------------------------------------------------


@dataclass(frozen=True)
class Target:
    combination: Combination
    engine: Engine
    variant: Variant
    lock: Lockfile
    lock_path: str  # in the build context (and the repository): lockfiles/<name>
    base: Base
    packages: tuple[str, ...]  # system packages, base's first
    model: Model  # the smoke model the default command serves
    model_path: str  # where that command expects the weights (mounted at /models)
    served_model_name: str  # the name the command serves the model as (clients send it as "model")
    hardware: str  # the --hardware the command was planned for ("cpu", or a GPU of the table)
    command: tuple[str, ...]
    env: Mapping[str, str]
    ready_path: str
    launchers: tuple[str, ...] = ()  # envman launcher modules the command runs (python -m NAME)
    extra: tuple[str, ...] = field(default=())  # options beyond the combination, for the header

    @property
    def filename(self) -> str:
        return filename(self.combination)

    @property
    def tag(self) -> str:
        return image_tag(self.combination)

    def command_line(self, base_image: str | None = None) -> str:
        c = self.combination
        words = ["envman", "dockerfile", "--engine", c.engine, "--version", str(c.version), "--variant", c.variant]
        if base_image:
            words += ["--base-image", base_image]
        return shell_words([*words, *self.extra], "option")


def smoke_model(matrix: Matrix, combination: Combination) -> Model:
    """The first smoke model in catalog order whose family has this combination as known good
    (text-only ones first: a vision-language smoke model has no GGUF form for llama.cpp images)."""
    smoke_models = [m for m in matrix.models.values() if m.smoke]
    for model in sorted(smoke_models, key=lambda m: Modality.IMAGE in m.modalities):
        found = combinations.known_good(
            matrix,
            families=[model.family],
            engine=combination.engine,
            version=str(combination.version),
            variant=combination.variant,
        )
        if combination in found:
            return model
    raise ConfigError(
        f"no smoke model in matrix.toml belongs to a family that {combination} is known good for",
        hint="add a smoke model (smoke = true) for one of its families",
    )


def plan_host(matrix: Matrix, combination: Combination) -> Host:
    """The notional host a Dockerfile's command is planned for: a CPU, or the smallest GPU of
    the matrix's table that the variant's release supports."""
    from envman.hardware.spec import parse_hardware

    variant = matrix.engines[combination.engine].variants[combination.variant]
    if variant.accelerator is Accelerator.CPU:
        return parse_hardware("cpu", matrix.gpus)
    if variant.accelerator is not Accelerator.CUDA:
        raise UsageError(f"{combination}: {variant.accelerator.value} builds do not run in Linux containers")
    floor = min_compute_capability(variant, combination)
    fitting = [g for g in matrix.gpus.values() if floor is None or g.compute_capability >= floor]
    if not fitting:
        raise ConfigError(f"no GPU in matrix.toml's table meets compute capability {floor} ({combination})")
    smallest = min(fitting, key=lambda g: g.memory_gib)
    return parse_hardware(smallest.name, matrix.gpus)


def min_compute_capability(variant: Variant, combination: Combination) -> Version | None:
    """The variant's compute-capability floor for this release (its limits included)."""
    floor = variant.min_compute_capability
    for limit in variant.limits:
        if combination.version in limit.versions and (floor is None or limit.min_compute_capability > floor):
            floor = limit.min_compute_capability
    return floor


def weights_path(model: Model, fmt: Format) -> str:
    if fmt is Format.GGUF:
        from envman.synth.cache import gguf_name

        return f"{MODELS_DIR}/{gguf_name(model)}"
    return f"{MODELS_DIR}/{model.name}"


def target_for(
    matrix: Matrix,
    combination: Combination,
    *,
    lock_dir: Path,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> Target:
    """Everything one Dockerfile is rendered from; the command is the planner's, for the smoke
    model of the combination's family, bound to 0.0.0.0 inside the container."""
    facts = images.facts()
    engine = matrix.engines[combination.engine]
    variant = engine.variants[combination.variant]
    request = locks.request_for(matrix, combination, offline=True)
    lock = lockfile.read(lock_dir / request.filename)
    lock.verify()
    model = smoke_model(matrix, combination)
    host = plan_host(matrix, combination)
    plan = Planner(matrix, host).plan(
        PlanRequest(model=model.name, engine=combination.engine, version=str(combination.version))
    )
    if plan.variant.name != combination.variant:
        raise ConfigError(f"the planner chose {plan.variant.name} for {combination}, not {combination.variant}")
    model_path = weights_path(model, plan.artifact.format)
    bound = launch(
        plan,
        Bindings(
            weights=model_path,
            host="0.0.0.0",  # noqa: S104 - inside the container only; `docker run -p` decides exposure
            port=facts.port,
            extra_args=tuple(safe(a, "argument") for a in extra_args),
        ),
    )
    env = dict(bound.env)
    for name, value in (extra_env or {}).items():
        env[env_name(name)] = safe(value, f"environment value of {name}")
    command = bound.argv
    launchers: tuple[str, ...] = ()
    if len(command) > 2 and command[:2] == ("python", "-m") and command[2].startswith("envman_"):
        launchers = (command[2],)
    extra = [w for a in extra_args for w in ("--arg", a)] + [
        w for k, v in (extra_env or {}).items() for w in ("--env", f"{k}={v}")
    ]
    base = images.base_for(facts, combination.engine, variant, lock)
    packages = tuple(dict.fromkeys(base.packages + facts.packages_for(combination.engine, combination.variant)))
    return Target(
        combination=combination,
        engine=engine,
        variant=variant,
        lock=lock,
        lock_path=f"lockfiles/{request.filename}",
        base=base,
        packages=packages,
        model=model,
        model_path=model_path,  # vllm serve takes it positionally: not always after --model
        served_model_name=bound.served_model_name,
        hardware=host.source,
        command=command,
        env=env,
        ready_path=bound.ready_path,
        launchers=launchers,
        extra=tuple(extra),
    )


# -- rendering ------------------------------------------------------------------------


def _sources(variant: Variant) -> list[str]:
    args: list[str] = []
    if variant.index_url:
        args += ["--index-url", variant.index_url]
    for url in variant.extra_index_urls:
        args += ["--extra-index-url", url]
    for location in variant.find_links:
        if "://" not in location:
            raise UsageError(
                f"find-links location {location!r} of {variant.package} is a local folder; a docker build cannot "
                "read it",
                hint="serve it over HTTP(S) or put the wheels on an index the build can reach",
            )
        args += ["--find-links", location]
    return args


def _run(commands: Iterable[Sequence[str] | str]) -> str:
    parts = [c if isinstance(c, str) else shell_words(c) for c in commands]
    return "RUN " + " \\\n && ".join(parts)


def _header(target: Target, port: int, base_image: str | None) -> list[str]:
    """How the file was made, and how to build and run it: lines a user can paste."""
    c = target.combination
    inside = plain(
        target.model_path, _MOUNT_TARGET, "weights path", "cannot be a mount target in a `docker run -v`",
        hint="name smoke models in matrix.toml with letters, digits and . _ + - only",
    )  # fmt: skip
    gguf = inside.endswith(".gguf")
    mount = posixpath.dirname(inside) if gguf else inside
    gpus = ["--gpus", "all"] if target.variant.accelerator is Accelerator.CUDA else []
    run = ["docker", "run", "--rm", *gpus, "-p", f"127.0.0.1:{port}:{port}"]
    build = ["envman", "build", target.model.name, "--docker", "--engine", c.engine, "--version", str(c.version)]
    served, url = target.served_model_name, f"http://127.0.0.1:{port}"
    docker_build = ["docker", "build", "-f", f"dockerfiles/{target.filename}", "-t", target.tag, "."]
    holds = f"holding {posixpath.basename(inside)}" if gguf else f"of {target.model.name}"
    lines = [
        f"GENERATED by `{target.command_line(base_image)}`. Do not edit: change matrix.toml,",
        "the lockfile or envman/docker/images.toml and run `envman dockerfile`.",
        f"lockfile: {target.lock_path} ({target.lock.digest})",
        f"build: {shell_words([*build, '--hardware', target.hardware])}",
        f"   or, from a checkout: {shell_words(docker_build)}",
        # "$WEIGHTS" stays double-quoted so the shell expands it; the rest is shlex-quoted
        f'run:   {shell_words(run)} -v "$WEIGHTS":{shlex.quote(mount + ":ro")} {shlex.quote(target.tag)}',
        f"       with WEIGHTS the host folder {holds} (an absolute path);",
        f"       it serves {inside} as {served} on {url}/v1 (ready: {target.ready_path}).",
        "       Words after the image replace the CMD below (to serve other weights).",
    ]
    return [comment(line) for line in lines]


def render(target: Target, *, base_image: str | None = None) -> str:
    facts: ImageFacts = images.facts()
    c = target.combination
    base = image_ref(base_image or target.base.image)
    venv = facts.venv
    uv = "/opt/envman/uv/bin/uv"
    package = Requirement(target.variant.package).name
    ready_path = plain(
        target.ready_path, _URL_PATH, "ready path", "is not a plain URL path",
        hint="the engine adapter's readiness path starts with / and has no @, ?, # or quote",
    )  # fmt: skip
    ready = f"http://127.0.0.1:{facts.port}{ready_path}"
    packages = [
        plain(name, _DEBIAN_PACKAGE, "system package", "is not a Debian package name", hint=f"see {images.FACTS_FILE}")
        for name in target.packages
    ]
    launchers = [
        plain(name, _MODULE, "launcher", "is not a Python module name", hint="launchers are envman_* modules")
        for name in target.launchers
    ]
    lines = [
        *_header(target, facts.port, base_image),
        "",
        f"ARG BASE_IMAGE={base}",
        "FROM ${BASE_IMAGE}",
        "",
        f"# System packages, the user, and extra CA certificates ({EXTRA_CA_DIR}/*.crt, `--extra-ca`).",
        f"COPY {EXTRA_CA_DIR}/ /usr/local/share/ca-certificates/envman/",
        _run(
            [
                "apt-get update",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " + shell_words(packages),
                "rm -rf /var/lib/apt/lists/*",
                "update-ca-certificates",
                ["useradd", "--create-home", "--uid", str(facts.uid), facts.user],
            ]
        ),
        "# pip, uv and requests trust the system bundle, extra CAs included.",
        env_instruction(
            {
                "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
                "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
                "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
                "UV_NATIVE_TLS": "1",
                "UV_NO_CACHE": "1",
                "UV_PYTHON_DOWNLOADS": "never" if target.base.python == "system" else "manual",
                "UV_PYTHON_INSTALL_DIR": "/opt/envman/python",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            }
        ),
        "",
        f"# uv {facts.uv}, pinned (images.toml), in its own virtual environment.",
        _run(
            [
                ["python3", "-m", "venv", "/opt/envman/uv"],
                ["/opt/envman/uv/bin/pip", "install", "--no-cache-dir", f"uv=={facts.uv}"],
            ]
            + (
                [[uv, "python", "install", target.lock.header.get("python", "3.11")]]
                if target.base.python == "uv"
                else []
            )
        ),
        "",
        "# The engine environment from the hash-pinned lockfile: the layer every later change reuses.",
        f"COPY {target.lock_path} /opt/envman/lock.txt",
        *(
            [
                "# for packages built from their sdist (matrix.toml: the variant's build_env)",
                env_instruction(target.variant.build_env),
            ]
            if target.variant.build_env
            else []
        ),
        _run(
            [
                [
                    uv,
                    "venv",
                    venv,
                    "--python",
                    target.lock.header.get("python", "3.11"),
                    "--python-preference",
                    "only-system" if target.base.python == "system" else "only-managed",
                ],
                [
                    uv,
                    "pip",
                    "sync",
                    "/opt/envman/lock.txt",
                    "--python",
                    f"{venv}/bin/python",
                    "--require-hashes",
                    *_sources(target.variant),
                ],
                [
                    f"{venv}/bin/python",
                    "-c",
                    "import importlib.metadata as m, sys; v = m.version(sys.argv[1]); "
                    "assert v == sys.argv[2], (sys.argv[1], v, sys.argv[2])",
                    package,
                    str(c.version),
                ],
            ]
        ),
        "",
    ]
    if launchers:
        lines += [
            "# envman's launcher module(s) for the engine's server.",
            *[f"COPY {LAUNCHERS_DIR}/{name}.py /opt/envman/launchers/" for name in launchers],
        ]
    runtime_env = {"VIRTUAL_ENV": venv}
    if launchers:
        runtime_env["PYTHONPATH"] = "/opt/envman/launchers"
    runtime_env.update(target.env)
    lines += [
        f'ENV PATH="{venv}/bin:${{PATH}}"',
        env_instruction(runtime_env),
        f"USER {facts.uid}",
        f"WORKDIR /home/{facts.user}",
        f"EXPOSE {facts.port}",
        f"HEALTHCHECK --interval=15s --timeout=5s --start-period={HEALTH_START_PERIOD} --retries=3 \\",
        "  CMD " + exec_form(["python", "-c", f"import urllib.request as u; u.urlopen({ready!r}, timeout=4)"]),
        "# The planner's command line for the smoke model; the server binds 0.0.0.0 inside the container only.",
        "CMD " + exec_form(target.command),
        "",
        label_instruction(
            {
                "org.opencontainers.image.title": f"envman/{c.engine}",
                "org.opencontainers.image.description": f"{c.engine} {c.version} ({c.variant}) from {target.lock_path}",
                "org.opencontainers.image.version": f"{c.version}-{c.variant}",
                "org.opencontainers.image.url": target.engine.homepage,
                "org.opencontainers.image.base.name": base,
                "io.envman.engine": c.engine,
                "io.envman.version": str(c.version),
                "io.envman.variant": c.variant,
                "io.envman.lockfile": target.lock_path,
                "io.envman.lock-digest": target.lock.digest,
                "io.envman.smoke-model": target.model.name,
            }
        ),
    ]
    return "\n".join(lines) + "\n"


# -- the committed set -----------------------------------------------------------------


def targets(matrix: Matrix, combinations: Iterable[Combination], lock_dir: Path) -> list[Target]:
    return [target_for(matrix, c, lock_dir=lock_dir) for c in combinations]


def write(target: Target, directory: Path, *, base_image: str | None = None) -> Path:
    path = directory / target.filename  # atomic_write creates the folder (exit 3 if it cannot)
    atomic_write(path, render(target, base_image=base_image))
    return path


def check(rendered: Iterable[Target], directory: Path, select_all: bool) -> list[Problem]:
    """Committed Dockerfiles that are missing, stale (render differently now) or orphaned."""
    expected = [
        Expected(
            directory / target.filename,
            target.command_line(),
            same_text(render(target), "stale: the matrix, lockfile or images.toml changed since"),
        )
        for target in rendered
    ]
    return generated.check(
        expected,
        orphans_in=directory if select_all else None,
        pattern=f"*{SUFFIX}",
        orphan_hint="no known-good combination of matrix.toml makes it; delete it",
    )
