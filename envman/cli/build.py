"""``envman build MODEL``: plan, then create (or reuse) the engine environment from its lockfile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from envman.cli._app import app, verbose
from envman.cli._common import (
    DriverOption,
    EngineOption,
    ForceOption,
    FormatOption,
    FrontendOption,
    HardwareOption,
    JsonOption,
    MatrixOption,
    ModelArgument,
    VersionOption,
    load,
    target_host,
)
from envman.cli._console import out, print_json


@app.command("build")
def build(
    model: ModelArgument,
    engine: EngineOption = None,
    version: VersionOption = None,
    format: FormatOption = None,
    hardware: HardwareOption = None,
    driver: DriverOption = None,
    force: ForceOption = False,
    frontend: FrontendOption = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Recreate the environment even if it exists.")] = False,
    docker: Annotated[
        bool, typer.Option("--docker", help="Build a Docker image from its generated Dockerfile instead of a venv.")
    ] = False,
    base_image: Annotated[
        str | None, typer.Option("--base-image", help="With --docker: another base image (a local stand-in).")
    ] = None,
    extra_ca: Annotated[
        Path | None, typer.Option("--extra-ca", help="With --docker: a CA bundle the build must trust (TLS proxies).")
    ] = None,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Build the planned engine environment: `uv venv` + `uv pip sync --require-hashes` from the lockfile."""
    from envman.build.environments import build as build_env
    from envman.cli._model import plan_request, resolve_model_arg
    from envman.cli._reporter import RichReporter
    from envman.lock.uv import Uv, find_uv
    from envman.plan.planner import Planner

    loaded = load(matrix)
    host = target_host(hardware, loaded, driver)
    resolved = resolve_model_arg(loaded, model)
    plan = Planner(loaded, host).plan(
        plan_request(resolved, engine=engine, version=version, format=format, force=force, frontend=frontend)
    )
    reporter = RichReporter(verbose())
    if docker:
        from envman.docker.image import build_image

        image = build_image(
            loaded,
            plan.engine,
            plan.engine_version,
            plan.variant.name,
            base_image=base_image,
            extra_ca=extra_ca,
            frontend=plan.frontend.key if plan.frontend else "",
            reporter=reporter,
        )
        if json:
            print_json(image.to_json())
        else:
            out.print(f"{image.tag} {image.image_id}", markup=False)
        return
    if (base_image or extra_ca) and not docker:
        from envman.errors import UsageError

        raise UsageError("--base-image and --extra-ca go with --docker")
    if not json:
        under = f" under {plan.frontend.name} {plan.frontend.version}" if plan.frontend else ""
        reporter.info(f"{plan.model.name}: {plan.engine} {plan.engine_version} ({plan.variant.name}){under}")
    result = build_env(
        loaded,
        plan.engine,
        plan.engine_version,
        plan.variant.name,
        uv=Uv(find_uv(), reporter, verbose=verbose()),
        rebuild=rebuild,
        reporter=reporter,
        frontend=plan.frontend.key if plan.frontend else "",
    )
    if json:
        print_json(result.to_json())
        return
    env = result.environment
    state = "reused" if result.reused else f"built in {result.seconds:.1f}s"
    out.print(f"{env.path} ({state})", markup=False)
    out.print(f"  python: {env.python_bin}", markup=False)
