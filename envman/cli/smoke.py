"""``envman smoke MODEL``: plan, build, start the server, ask one completion, stop it, keep the evidence."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from envman.cli._app import app, verbose
from envman.cli._common import (
    EngineOption,
    ForceOption,
    FormatOption,
    FrontendOption,
    JsonOption,
    MatrixOption,
    ModelArgument,
    TimeoutOption,
    VersionOption,
    load,
)
from envman.cli._console import err, out, print_json
from envman.errors import UsageError

if TYPE_CHECKING:
    from envman.run.smoke import SmokeResult


@app.command("smoke")
def smoke(
    model: ModelArgument,
    engine: EngineOption = None,
    version: VersionOption = None,
    format: FormatOption = None,
    force: ForceOption = False,
    frontend: FrontendOption = None,
    model_path: Annotated[
        str | None, typer.Option("--model-path", help="Local weights (a .gguf file, or a model folder).")
    ] = None,
    timeout: TimeoutOption = 600,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Recreate the environment even if it exists.")] = False,
    docker: Annotated[
        bool, typer.Option("--docker", help="Build the combination's image and smoke inside a container.")
    ] = False,
    base_image: Annotated[
        str | None, typer.Option("--base-image", help="With --docker: another base image (a local stand-in).")
    ] = None,
    extra_ca: Annotated[
        Path | None, typer.Option("--extra-ca", help="With --docker: a CA bundle the build must trust.")
    ] = None,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Prove a combination works on this machine: one chat completion (exit 0 passed, 1 failed, 130 Ctrl-C)."""
    from envman.cli._model import local_weights, plan_request, resolve_model_arg
    from envman.cli._reporter import RichReporter
    from envman.hardware.detect import detect_host
    from envman.lock.uv import Uv, find_uv
    from envman.run.smoke import prepare
    from envman.run.smoke import smoke as run_smoke

    loaded = load(matrix)
    reporter = RichReporter(verbose())
    if docker and frontend:
        raise UsageError("--docker with --frontend is not supported yet", hint="smoke it without --docker")
    if docker:
        result = _smoke_in_docker(
            loaded, model, engine, version, format, force, base_image, extra_ca, timeout, reporter
        )
        show_result(result, json)
        return
    if base_image or extra_ca:
        raise UsageError("--base-image and --extra-ca go with --docker")
    resolved = resolve_model_arg(loaded, model, model_path)
    request = plan_request(resolved, engine=engine, version=version, format=format, force=force, frontend=frontend)
    uv = Uv(find_uv(), reporter, verbose=verbose())
    weights = local_weights(resolved, model_path)
    ready = prepare(
        loaded, detect_host(), request, uv=uv, model_path=str(weights) if weights else None, reporter=reporter,
        rebuild=rebuild,
    )  # fmt: skip

    def echo(line: str) -> None:
        err.print(line, markup=False, highlight=False)

    runner: Any = ready.runner
    if ready.plan.frontend is not None:  # Xinference is the server; it launches the engine
        from envman.engines.launch import Bindings
        from envman.frontends.serve import serving
        from envman.run.ports import free_port

        runner = serving(ready.plan, Bindings(port=free_port()), ready.build.environment, ready.model_path, timeout)
    result = run_smoke(
        loaded,
        ready.plan,
        runner,
        timeout,
        reporter,
        build_seconds=ready.build.seconds,
        on_line=echo if verbose() else None,
    )
    show_result(result, json)


def show_result(result: SmokeResult, json: bool) -> None:
    """One smoke result, local or in a container, as text or the documented JSON; exit 1 if it failed."""
    where = f"{result.plan.engine} {result.plan.engine_version} ({result.plan.variant.name})"
    if json:
        print_json(result.to_json())
    elif result.passed:
        assert result.answer is not None
        out.print(
            f"[green]passed[/] {where}: {result.answer.completion_tokens} tokens in {result.seconds:.1f}s "
            f"(ready after {result.timings.start_to_ready or 0:.1f}s)",
            highlight=False,
        )
        out.print(f"  answer:   {result.answer.text!r}", markup=False)
        out.print(f"  evidence: {result.evidence}", markup=False)
    else:
        out.print(f"[bold red]failed[/] {where}: {result.error}", highlight=False)
        if result.log_tail and not result.diagnosis:
            out.print(result.log_tail, markup=False)
        if result.diagnosis:
            out.print(f"  diagnosis: {result.diagnosis}", markup=False)
        out.print(f"  log:      {result.log_path}", markup=False)
        out.print(f"  evidence: {result.evidence}", markup=False)
    if not result.passed:
        raise typer.Exit(1)


def _smoke_in_docker(
    matrix: Any,
    model: str,
    engine: str | None,
    version: str | None,
    format: str | None,
    force: bool,
    base_image: str | None,
    extra_ca: Path | None,
    timeout: float,
    reporter: Any,
) -> SmokeResult:
    """Plan on this host, then build the combination's image and smoke the model in a container."""
    from envman.ci.matrix import smoke_combination
    from envman.cli._model import plan_request, resolve_model_arg
    from envman.hardware.detect import detect_host
    from envman.matrix.combinations import Combination
    from envman.plan.planner import Planner

    resolved = resolve_model_arg(matrix, model)
    plan = Planner(matrix, detect_host()).plan(
        plan_request(resolved, engine=engine, version=version, format=format, force=force)
    )
    combination = Combination(plan.engine, plan.engine_version, plan.variant.name)
    return smoke_combination(
        matrix,
        combination,
        model=plan.model.name,
        base_image=base_image,
        extra_ca=extra_ca,
        timeout=timeout,
        reporter=reporter,
    )
