"""``envman dockerfile``: render (or --check) one Dockerfile per known-good engine × version × variant."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envman.cli._app import app
from envman.cli._common import (
    DriverOption,
    HardwareOption,
    JsonOption,
    MatrixOption,
    NetworkInterfaceOption,
    NodesOption,
    keep_for_driver,
    print_check,
)
from envman.cli._console import out, print_json
from envman.errors import UsageError

if TYPE_CHECKING:
    from envman.matrix.schema import Matrix


@app.command("dockerfile")
def dockerfile(
    model: Annotated[str | None, typer.Argument(help="Only the combinations of this model's family.")] = None,
    engine: Annotated[str | None, typer.Option("--engine", help="Only this engine.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Only this engine version.")] = None,
    variant: Annotated[str | None, typer.Option("--variant", help="Only this variant (cpu, cuda …).")] = None,
    frontend: Annotated[
        str | None,
        typer.Option("--frontend", help="Only the pairs under this frontend: xinference, or xinference==4.1.0."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every known-good combination (the default).")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 naming each stale, missing or orphaned Dockerfile; write nothing.")
    ] = False,
    base_image: Annotated[
        str | None, typer.Option("--base-image", help="Base image instead of images.toml's (a local stand-in).")
    ] = None,
    extra_ca: Annotated[
        Path | None,
        typer.Option("--extra-ca", help="PEM CA bundle the images trust (copied to dockerfiles/extra-ca/)."),
    ] = None,
    arg: Annotated[list[str] | None, typer.Option("--arg", help="Extra server argument (repeatable).")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="Extra KEY=VALUE for the server (repeatable).")] = None,
    driver: DriverOption = None,
    nodes: NodesOption = None,
    network_interface: NetworkInterfaceOption = None,
    hardware: HardwareOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="With --nodes: write the Dockerfile here (default: stdout).")
    ] = None,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Write Dockerfiles into dockerfiles/: base image, pinned uv, the lockfile synced with
    --require-hashes, the engine's launch command, health check and labels."""
    from envman.cli._model import resolve_model_arg
    from envman.docker import dockerfile as df
    from envman.docker.context import install_extra_ca, selected_combinations
    from envman.lock import locks
    from envman.paths import default_matrix

    loaded = df.public_matrix(matrix or default_matrix())
    if base_image is not None:
        df.image_ref(base_image)
    if nodes is not None and nodes > 1:
        if frontend or driver:
            what = "--frontend" if frontend else "--driver"
            raise UsageError(f"{what} does not combine with --nodes", hint=f"a multi-node image has no {what} yet")
        _nodes_dockerfile(
            loaded, model, nodes, hardware, engine, version, arg, env, base_image, output, check, network_interface
        )
        return
    family = resolve_model_arg(loaded, model).model.family if model else None
    selected, everything = selected_combinations(
        loaded, family=family, engine=engine, version=version, variant=variant, frontend=frontend
    )
    if driver is not None:  # only the builds whose CUDA runtime that driver runs
        selected, everything = keep_for_driver(loaded, selected, driver), False
    extra_env = _extra_env(env)
    lock_dir = locks.lockfiles_dir(loaded)
    directory = df.dockerfiles_dir(loaded)
    targets = [df.target_for(loaded, c, lock_dir=lock_dir, extra_args=arg or (), extra_env=extra_env) for c in selected]
    if check:
        problems = df.check(targets, directory, select_all=everything or all_)
        print_check(problems, json, f"{len(targets)} Dockerfiles up to date in {directory}")
        return
    if extra_ca is not None:
        copied = install_extra_ca(extra_ca, directory.parent / df.EXTRA_CA_DIR)
        if not json:
            out.print(f"trusting {extra_ca}: {copied}", markup=False)
    written = []
    for target in targets:
        written_path = df.write(target, directory, base_image=base_image)
        written.append({"path": str(written_path), "engine": target.combination.engine,
                        "version": str(target.combination.version), "variant": target.combination.variant,
                        "frontend": target.combination.frontend or None,
                        "image": target.tag, "lock_digest": target.lock.digest})  # fmt: skip
        if not json:
            out.print(f"wrote {written_path}", markup=False)
    if json:
        print_json(written)


def _extra_env(items: list[str] | None) -> dict[str, str]:
    extra_env: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env {item!r} is not KEY=VALUE")
        extra_env[name] = value
    return extra_env


def _nodes_dockerfile(
    loaded: Matrix,
    model: str | None,
    nodes: int,
    hardware: str | None,
    engine: str | None,
    version: str | None,
    arg: list[str] | None,
    env: list[str] | None,
    base_image: str | None,
    output: Path | None,
    check: bool,
    network_interface: str | None = None,
) -> None:
    """``--nodes N``: one image for every rank of MODEL's multi-node plan, printed (or ``--output``)."""
    from envman.cli._common import target_host
    from envman.cli._model import plan_request, resolve_model_arg
    from envman.docker import dockerfile as df
    from envman.files import atomic_write
    from envman.lock import locks
    from envman.plan.planner import Planner

    if model is None:
        raise UsageError(
            "--nodes needs a MODEL", hint="e.g. envman dockerfile llama-3.1-405b --hardware H100x8 --nodes 2"
        )
    if check:
        raise UsageError("--check compares the committed single-node Dockerfiles; a --nodes one is not committed")
    resolved = resolve_model_arg(loaded, model)
    plan = Planner(loaded, target_host(hardware, loaded)).plan(
        plan_request(resolved, engine=engine, version=version, nodes=nodes)
    )
    if plan.nodes < 2:
        raise UsageError(
            f"{plan.model.name} fits one node of {plan.host.describe()}: there is no multi-node image to make",
            hint="`envman dockerfile` without --nodes renders the single-node images",
        )
    made_by = ["envman", "dockerfile", plan.model.name, "--nodes", str(nodes), "--hardware", plan.host.source,
               "--engine", plan.engine, "--version", str(plan.engine_version)]  # fmt: skip
    made_by += [w for a in arg or () for w in ("--arg", a)] + [w for e in env or () for w in ("--env", e)]
    made_by += ["--network-interface", network_interface] if network_interface else []
    target = df.nodes_target(
        loaded, plan, lock_dir=locks.lockfiles_dir(loaded), made_by=made_by, extra_args=arg or (),
        extra_env=_extra_env(env), network_interface=network_interface,
    )  # fmt: skip
    text = df.render(target, base_image=base_image)
    if output is None:
        out.print(text, markup=False, highlight=False, end="", soft_wrap=True)
        return
    atomic_write(output, text)
    out.print(f"wrote {output}", markup=False)
