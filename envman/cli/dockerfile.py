"""``envman dockerfile``: render (or --check) one Dockerfile per known-good engine × version × variant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import DriverOption, JsonOption, MatrixOption, keep_for_driver, print_check
from envman.cli._console import out, print_json
from envman.errors import UsageError


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
    family = resolve_model_arg(loaded, model).model.family if model else None
    selected, everything = selected_combinations(
        loaded, family=family, engine=engine, version=version, variant=variant, frontend=frontend
    )
    if driver is not None:  # only the builds whose CUDA runtime that driver runs
        selected, everything = keep_for_driver(loaded, selected, driver), False
    extra_env: dict[str, str] = {}
    for item in env or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env {item!r} is not KEY=VALUE")
        extra_env[name] = value
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
