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
from envman.engines.launch import LWS_LEADER_ADDRESS, LWS_WORKER_INDEX, Bindings, launch, node_launches
from envman.errors import ConfigError, EnvmanError, UsageError
from envman.files import atomic_write
from envman.frontends.serve import CONTAINER_LAUNCHER, container_launch
from envman.generated import Expected, Problem, same_text
from envman.hardware.host import Host
from envman.lock import lockfile, locks
from envman.lock.lockfile import Lockfile, LockRequest
from envman.matrix import combinations
from envman.matrix.combinations import Combination
from envman.matrix.schema import Accelerator, Engine, Format, Matrix, Modality, Model, Variant
from envman.plan.planner import Planner
from envman.plan.request import PlanRequest
from envman.plan.result import Plan
from envman.synth.vocab import CHAT_TEMPLATE

SUFFIX = ".Dockerfile"
_COMMAND_COMMENT = (
    "# The planner's command line for the smoke model; the server binds 0.0.0.0 inside the container only."
)
_COMMAND_COMMENT_NODES = (
    "# The ranks' commands (python -m envman_node_entrypoint picks one); servers bind 0.0.0.0 inside only."
)
EXTRA_CA_DIR = "dockerfiles/extra-ca"  # context path every Dockerfile COPYs CA certificates from
LAUNCHERS_DIR = "envman/engines/launchers"  # context path of envman's launcher modules
FRONTEND_LAUNCHERS_DIR = "envman/frontends/launchers"  # and of a frontend image's entrypoint
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
    """``envman/xllamacpp:2026.10.11549-cpu``; under a frontend
    ``envman/xinference:4.1.0-xllamacpp-2026.10.11549-cpu``."""
    c = combination
    if c.frontend:
        name, _, version = c.frontend.partition("==")
        return f"envman/{name}:{version}-{c.engine}-{c.version}-{c.variant}"
    return f"envman/{c.engine}:{c.version}-{c.variant}"


def filename(combination: Combination) -> str:
    c = combination
    under = c.frontend.replace("==", "-") + "-" if c.frontend else ""
    return f"{under}{c.engine}-{c.version}-{c.variant}{SUFFIX}"


def launcher_dir(name: str) -> str:
    """Where launcher module ``name`` lives in the repository (and the build context)."""
    return FRONTEND_LAUNCHERS_DIR if name == CONTAINER_LAUNCHER else LAUNCHERS_DIR


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
    sources: tuple[str, ...] = ()  # uv's --index-url/--extra-index-url/--find-links for the sync
    installed: tuple[tuple[str, str], ...] = ()  # (package, version) the image checks after the sync
    build_env: Mapping[str, str] = field(default_factory=dict)  # for sdists in the lock (CMAKE_ARGS)
    homepage: str = ""  # the frontend's, for an image under one (else the engine's)
    nodes: int = 1  # a multi-node image (``--nodes N``): the entrypoint picks each rank's command
    made_by: tuple[str, ...] = ()  # the envman command line of a multi-node image (its header)

    @property
    def filename(self) -> str:
        return filename(self.combination)

    @property
    def tag(self) -> str:
        return image_tag(self.combination)

    def command_line(self, base_image: str | None = None) -> str:
        if self.made_by:
            return shell_words([*self.made_by, *(["--base-image", base_image] if base_image else [])], "option")
        c = self.combination
        words = ["envman", "dockerfile", *(["--frontend", c.frontend] if c.frontend else [])]
        words += ["--engine", c.engine, "--version", str(c.version), "--variant", c.variant]
        if base_image:
            words += ["--base-image", base_image]
        return shell_words([*words, *self.extra], "option")


def smoke_model(matrix: Matrix, combination: Combination) -> Model:
    """The first smoke model in catalog order whose family has this combination as known good
    (under a frontend: the first the frontend pair can serve; text-only ones first: a
    vision-language smoke model has no GGUF form for llama.cpp images)."""
    if combination.frontend:
        return _frontend_smoke_model(matrix, combination)
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


def _frontend_smoke_model(matrix: Matrix, combination: Combination) -> Model:
    host = plan_host(matrix, combination)
    for model in sorted(matrix.models.values(), key=lambda m: Modality.IMAGE in m.modalities):
        if model.smoke and combination.engine in matrix.families[model.family].engines:
            try:
                _plan(matrix, host, model, combination)
            except EnvmanError:
                continue
            return model
    raise ConfigError(
        f"no smoke model in matrix.toml can be served by {combination}",
        hint="add a smoke model (smoke = true) of a family the engine supports",
    )


def _plan(matrix: Matrix, host: Host, model: Model, combination: Combination) -> Plan:
    request = PlanRequest(
        model=model.name,
        engine=combination.engine,
        version=str(combination.version),
        frontend=combination.frontend or None,
    )
    plan = Planner(matrix, host).plan(request)
    if plan.variant.name != combination.variant:
        raise ConfigError(f"the planner chose {plan.variant.name} for {combination}, not {combination.variant}")
    return plan


def _locked_engines(matrix: Matrix, combination: Combination, lock: Lockfile) -> list[tuple[str, Variant]]:
    """Other engines whose package the lock pins (llama-cpp-python beside xllamacpp under Xinference 1.4.0):
    the image needs their system packages and build settings too."""
    found = []
    for name, engine in matrix.engines.items():
        variant = engine.variants.get(combination.variant)
        if name == combination.engine or variant is None:
            continue
        package = Requirement(variant.package).name
        if re.search(rf"^{re.escape(package)}==", lock.body, re.MULTILINE):
            found.append((name, variant))
    return found


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
    plan = _plan(matrix, host, model, combination)
    model_path = weights_path(model, plan.artifact.format)
    if plan.frontend is not None:
        if extra_args:
            raise UsageError(
                f"--arg does not go through --frontend {plan.frontend.name}: it launches the engine itself"
            )
        bound = container_launch(
            plan,
            weights=model_path,
            port=facts.port,
            home=f"/home/{facts.user}/.xinference",  # XINFERENCE_HOME: the image user's, writable
            chat_template=CHAT_TEMPLATE,  # what envman writes into its smoke models (synth/gguf_file.py)
        )
    else:
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
    packages = base.packages + facts.packages_for(combination.engine, combination.variant)
    installed = [(Requirement(variant.package).name, str(combination.version))]
    build_env = dict(variant.build_env)
    if plan.frontend is not None:
        installed.insert(0, (plan.frontend.package, str(plan.frontend.version)))
        for name, other in _locked_engines(matrix, combination, lock):
            packages += facts.packages_for(name, other.name)
            build_env |= other.build_env
    return Target(
        combination=combination,
        engine=engine,
        variant=variant,
        lock=lock,
        lock_path=f"lockfiles/{request.filename}",
        base=base,
        packages=tuple(dict.fromkeys(packages)),
        model=model,
        model_path=model_path,  # vllm serve takes it positionally: not always after --model
        served_model_name=bound.served_model_name,
        hardware=host.source,
        command=command,
        env=env,
        ready_path=bound.ready_path,
        launchers=launchers,
        extra=tuple(extra),
        sources=_sources(request),
        installed=tuple(installed),
        build_env=build_env,
        homepage=matrix.frontends[plan.frontend.name].homepage if plan.frontend else "",
    )


NODE_ENTRYPOINT = "envman_node_entrypoint"  # envman/engines/launchers: picks the rank from LWS_WORKER_INDEX


def nodes_target(
    matrix: Matrix,
    plan: Plan,
    *,
    lock_dir: Path,
    made_by: Sequence[str],
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    network_interface: str | None = None,
) -> Target:
    """The image of a multi-node ``plan``: the combination's environment, and a CMD that runs the
    rank ``LWS_WORKER_INDEX`` names with the leader at ``LWS_LEADER_ADDRESS``: the commands
    ``envman k8s`` puts in the LeaderWorkerSet's pods, the same references in them."""
    facts = images.facts()
    combination = Combination(plan.engine, plan.engine_version, plan.variant.name)
    request = locks.request_for(matrix, combination, offline=True)
    lock = lockfile.read(lock_dir / request.filename)
    lock.verify()
    bindings = Bindings(
        host="0.0.0.0",  # noqa: S104 - inside the container only, as in a pod
        port=facts.port,
        extra_args=tuple(safe(a, "argument") for a in extra_args),
        network_interface=network_interface,
    )
    leader, worker = node_launches(plan, bindings, LWS_LEADER_ADDRESS, ranks=["0", LWS_WORKER_INDEX], node_address="")
    env = dict(leader.launch.env)
    node_env = plan.multinode.node_env if plan.multinode else ()
    for name in node_env:
        env.pop(name, None)  # this node's own address: set per container (a pod's status.podIP)
    for name, value in (extra_env or {}).items():
        env[env_name(name)] = safe(value, f"environment value of {name}")
    roles = {}
    launchers = {NODE_ENTRYPOINT}
    for role, node in (("leader", leader), ("worker", worker)):
        for argv in (*node.setup, node.launch.argv):
            for word in argv:
                safe(word, "argument")
            if len(argv) > 2 and argv[:2] == ("python", "-m") and argv[2].startswith("envman_"):
                launchers.add(argv[2])
        roles[role] = {"setup": [list(c) for c in node.setup], "command": list(node.launch.argv),
                       "node_env": list(node_env)}  # fmt: skip
    spec = json.dumps({"nodes": plan.nodes, **roles}, sort_keys=True)
    base = images.base_for(facts, combination.engine, plan.variant, lock)
    packages = tuple(dict.fromkeys(base.packages + facts.packages_for(combination.engine, combination.variant)))
    return Target(
        combination=combination,
        engine=matrix.engines[plan.engine],
        variant=plan.variant,
        lock=lock,
        lock_path=f"lockfiles/{request.filename}",
        base=base,
        packages=packages,
        model=plan.model,
        model_path=leader.launch.argv[leader.launch.argv.index("--model") + 1]
        if "--model" in leader.launch.argv
        else plan.artifact.repo,
        served_model_name=leader.launch.served_model_name,
        hardware=plan.host.source,
        command=("python", "-m", NODE_ENTRYPOINT, spec),
        env=env,
        ready_path=leader.launch.ready_path,
        launchers=tuple(sorted(launchers)),
        nodes=plan.nodes,
        made_by=tuple(made_by),
    )


# -- rendering ------------------------------------------------------------------------


def _sources(request: LockRequest) -> tuple[str, ...]:
    """uv's source options for the lock's packages (the engine variant's, and a frontend variant's)."""
    args: list[str] = []
    if request.index_url:
        args += ["--index-url", request.index_url]
    for url in request.extra_index_urls:
        args += ["--extra-index-url", url]
    for location in request.find_links:
        if "://" not in location:
            raise UsageError(
                f"find-links location {location!r} of {request.package} is a local folder; a docker build cannot "
                "read it",
                hint="serve it over HTTP(S) or put the wheels on an index the build can reach",
            )
        args += ["--find-links", location]
    return tuple(args)


def _run(commands: Iterable[Sequence[str] | str]) -> str:
    parts = [c if isinstance(c, str) else shell_words(c) for c in commands]
    return "RUN " + " \\\n && ".join(parts)


def _nodes_header(target: Target, port: int, base_image: str | None) -> list[str]:
    """A multi-node image: how it was made, how to build it, and how each node runs it."""
    gpus = ["--gpus", "all"] if target.variant.accelerator is Accelerator.CUDA else []
    run = ["docker", "run", "--rm", *gpus, "--network", "host", "--ipc", "host", "-e", "HF_TOKEN"]
    lines = [
        f"GENERATED by `{target.command_line(base_image)}`. Do not edit: change matrix.toml,",
        "the lockfile or envman/docker/images.toml and run it again.",
        f"lockfile: {target.lock_path} ({target.lock.digest})",
        f"{target.nodes} nodes of {target.hardware}, one image for every rank: the CMD runs the rank",
        "LWS_WORKER_INDEX names (0: the leader, which serves the API) with the leader at LWS_LEADER_ADDRESS,",
        "as a LeaderWorkerSet sets them (`envman k8s` with the same options). By hand, on each node:",
        f"  {shell_words([*run, '-e', 'LWS_LEADER_ADDRESS=<leader-address>', '-e', 'LWS_WORKER_INDEX=<rank>'])} "
        f"{shlex.quote(target.tag)}",
        f"the leader serves {target.served_model_name} on port {port} (ready: {target.ready_path}).",
    ]
    return [comment(line) for line in lines]


def _header(target: Target, port: int, base_image: str | None) -> list[str]:
    """How the file was made, and how to build and run it: lines a user can paste."""
    if target.nodes > 1:
        return _nodes_header(target, port, base_image)
    c = target.combination
    inside = plain(
        target.model_path, _MOUNT_TARGET, "weights path", "cannot be a mount target in a `docker run -v`",
        hint="name smoke models in matrix.toml with letters, digits and . _ + - only",
    )  # fmt: skip
    gguf = inside.endswith(".gguf")
    mount = posixpath.dirname(inside) if gguf else inside
    gpus = ["--gpus", "all"] if target.variant.accelerator is Accelerator.CUDA else []
    run = ["docker", "run", "--rm", *gpus, "-p", f"127.0.0.1:{port}:{port}"]
    build = ["envman", "build", target.model.name, "--docker", *(["--frontend", c.frontend] if c.frontend else [])]
    build += ["--engine", c.engine, "--version", str(c.version)]
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


def _health_probe(ready: str, nodes: int) -> str:
    if nodes > 1:  # workers serve no HTTP: healthy while they run
        return (
            "import os, urllib.request as u; "
            f"os.environ.get('LWS_WORKER_INDEX', '0') != '0' or u.urlopen({ready!r}, timeout=4)"
        )
    return f"import urllib.request as u; u.urlopen({ready!r}, timeout=4)"


def render(target: Target, *, base_image: str | None = None) -> str:
    facts: ImageFacts = images.facts()
    c = target.combination
    base = image_ref(base_image or target.base.image)
    venv = facts.venv
    uv = "/opt/envman/uv/bin/uv"
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
                env_instruction(target.build_env),
            ]
            if target.build_env
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
                    *target.sources,
                ],
                *(
                    [
                        f"{venv}/bin/python",
                        "-c",
                        "import importlib.metadata as m, sys; v = m.version(sys.argv[1]); "
                        "assert v == sys.argv[2], (sys.argv[1], v, sys.argv[2])",
                        package,
                        version,
                    ]
                    for package, version in target.installed
                ),
            ]
        ),
        "",
    ]
    if launchers:
        lines += [
            "# envman's launcher module(s) for the engine's server.",
            *[f"COPY {launcher_dir(name)}/{name}.py /opt/envman/launchers/" for name in launchers],
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
        "  CMD " + exec_form(["python", "-c", _health_probe(ready, target.nodes)]),
        *(
            [
                f"# envman's launcher starts {c.frontend.partition('==')[0]} (bound to 0.0.0.0 inside the container",
                "# only, its authentication off: publish it on 127.0.0.1, as above), registers the smoke model",
                "# and launches it.",
            ]
            if c.frontend
            else [_COMMAND_COMMENT_NODES if target.nodes > 1 else _COMMAND_COMMENT]
        ),
        "CMD " + exec_form(target.command),
        "",
        label_instruction(
            {
                "org.opencontainers.image.title": target.tag.partition(":")[0],
                "org.opencontainers.image.description": f"{c} from {target.lock_path}",
                "org.opencontainers.image.version": target.tag.partition(":")[2],
                "org.opencontainers.image.url": target.homepage or target.engine.homepage,
                "org.opencontainers.image.base.name": base,
                "io.envman.engine": c.engine,
                "io.envman.version": str(c.version),
                "io.envman.variant": c.variant,
                **({"io.envman.frontend": c.frontend} if c.frontend else {}),
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
