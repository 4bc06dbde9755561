"""``envman plan MODEL``: choose engine, version, variant, format, dtype and TP size."""

from __future__ import annotations

from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import (
    EngineOption,
    ForceOption,
    FormatOption,
    FrontendOption,
    HardwareOption,
    JsonOption,
    MatrixOption,
    MaxModelLenOption,
    ModelArgument,
    TensorParallelSizeOption,
    VersionOption,
    load,
    target_host,
)
from envman.cli._console import err, out, print_json


@app.command("plan")
def plan(
    model: ModelArgument,
    engine: EngineOption = None,
    version: VersionOption = None,
    format: FormatOption = None,
    hardware: HardwareOption = None,
    max_model_len: MaxModelLenOption = None,
    tensor_parallel_size: TensorParallelSizeOption = None,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Let the engine run the model repository's own code.")
    ] = False,
    force: ForceOption = False,
    frontend: FrontendOption = None,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Choose how to serve MODEL on the target hardware, and say why every alternative was rejected."""
    from envman.cli._model import plan_request, resolve_model_arg
    from envman.engines.launch import Bindings, launch
    from envman.plan.planner import Planner

    loaded = load(matrix)
    host = target_host(hardware, loaded)
    resolved = resolve_model_arg(loaded, model)
    for warning in resolved.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    result = Planner(loaded, host).plan(
        plan_request(
            resolved,
            engine=engine,
            version=version,
            format=format,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            trust_remote_code=trust_remote_code,
            force=force,
            frontend=frontend,
        )
    )
    bound = launch(
        result, Bindings(weights=str(resolved.path) if resolved.path else None)
    )  # what `envman up` would run with its defaults
    if result.frontend is not None:  # what runs is the frontend's server, which launches the engine
        from envman.frontends.serve import shown_launch

        bound = shown_launch(result, Bindings())
    if json:
        print_json(result.to_json() | bound.to_json())
        return
    from envman.cli._render import render_plan

    render_plan(result, bound, out)
