"""``envman smoke MODEL``: plan, build, start the server, ask one completion, stop it, keep the evidence."""

from __future__ import annotations

from typing import Annotated

import typer

from envman.cli._app import app, verbose
from envman.cli._common import JsonOption, MatrixOption, load
from envman.cli._console import err, out, print_json


@app.command("smoke")
def smoke(
    model: Annotated[str, typer.Argument(help="Catalog model name, alias or hub repo id.")],
    engine: Annotated[str | None, typer.Option("--engine", help="Only consider this engine.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Engine version (needs --engine).")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Weights format (see `envman plan`).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Override the planner's refusals (floors, known-bad, memory).")
    ] = False,
    model_path: Annotated[
        str | None, typer.Option("--model-path", help="Local weights (a .gguf file, or a model folder).")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds the server may take to become ready.")] = 600,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Recreate the environment even if it exists.")] = False,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Prove a combination works on this machine: one chat completion (exit 0 passed, 1 failed, 130 Ctrl-C)."""
    from envman.cli._reporter import RichReporter
    from envman.hardware.detect import detect_host
    from envman.plan.planner import PlanRequest
    from envman.run.smoke import prepare
    from envman.run.smoke import smoke as run_smoke
    from envman.uv import Uv, find_uv

    loaded = load(matrix)
    reporter = RichReporter(verbose())
    request = PlanRequest(
        model=model, engine=engine, version=version, format=format, force=force, model_path=model_path
    )
    uv = Uv(find_uv(), reporter, verbose=verbose())
    ready = prepare(loaded, detect_host(), request, uv=uv, reporter=reporter, rebuild=rebuild)

    def echo(line: str) -> None:
        err.print(line, markup=False, highlight=False)

    result = run_smoke(
        loaded,
        ready.plan,
        ready.build.environment,
        ready.model_path,
        timeout,
        reporter,
        build_seconds=ready.build.seconds,
        on_line=echo if verbose() else None,
    )
    if json:
        print_json(result.to_json())
    elif result.passed:
        assert result.answer is not None
        out.print(
            f"[green]passed[/] {result.plan.engine} {result.plan.engine_version} ({result.plan.variant.name}): "
            f"{result.answer.completion_tokens} tokens in {result.seconds:.1f}s "
            f"(ready after {result.timings.start_to_ready or 0:.1f}s)",
            highlight=False,
        )
        out.print(f"  answer:   {result.answer.text!r}", markup=False)
        out.print(f"  evidence: {result.evidence}", markup=False)
    else:
        out.print(
            f"[bold red]failed[/] {result.plan.engine} {result.plan.engine_version} ({result.plan.variant.name}): "
            f"{result.error}",
            highlight=False,
        )
        if result.log_tail and not result.diagnosis:
            out.print(result.log_tail, markup=False)
        if result.diagnosis:
            out.print(f"  diagnosis: {result.diagnosis}", markup=False)
        out.print(f"  log:      {result.log_path}", markup=False)
        out.print(f"  evidence: {result.evidence}", markup=False)
    if not result.passed:
        raise typer.Exit(1)
