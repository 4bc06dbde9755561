"""``envman plan MODEL``: choose engine, version, variant, format, dtype and TP size."""

from __future__ import annotations

from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import (
    DriverOption,
    EngineOption,
    ForceOption,
    FormatOption,
    FrontendOption,
    HardwareOption,
    JsonOption,
    MatrixOption,
    MaxModelLenOption,
    ModelArgument,
    NodesOption,
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
    driver: DriverOption = None,
    max_model_len: MaxModelLenOption = None,
    tensor_parallel_size: TensorParallelSizeOption = None,
    nodes: NodesOption = None,
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
    from envman.cli._nodes import launches, nodes_json, render_nodes
    from envman.engines.launch import Bindings
    from envman.plan.planner import Planner

    loaded = load(matrix)
    host = target_host(hardware, loaded, driver)
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
            nodes=nodes,
            trust_remote_code=trust_remote_code,
            force=force,
            frontend=frontend,
        )
    )
    # what `envman up` would run with its defaults (the leader's command over several nodes)
    bound, per_node = launches(result, Bindings(weights=str(resolved.path) if resolved.path else None))
    if result.frontend is not None:  # what runs is the frontend's server, which launches the engine
        from envman.frontends.serve import shown_launch

        bound = shown_launch(result, Bindings())
    if json:
        print_json(result.to_json() | bound.to_json() | nodes_json(bound, per_node))
        return
    from envman.cli._render import render_plan

    render_plan(result, bound, out)
    render_nodes(result, per_node, out)
