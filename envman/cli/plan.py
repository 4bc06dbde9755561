"""``envman plan MODEL``: choose engine, version, variant, format, dtype and TP size."""

from __future__ import annotations

from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import (
    EngineOption,
    ForceOption,
    FormatOption,
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
from envman.cli._console import out, print_json


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
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Choose how to serve MODEL on the target hardware, and say why every alternative was rejected."""
    from envman.plan.planner import Planner, PlanRequest

    loaded = load(matrix)
    host = target_host(hardware, loaded)
    result = Planner(loaded, host).plan(
        PlanRequest(
            model=model,
            engine=engine,
            version=version,
            format=format,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            trust_remote_code=trust_remote_code,
            force=force,
        )
    )
    if json:
        print_json(result.to_json())
        return
    from envman.cli._render import render_plan

    render_plan(result, out)
