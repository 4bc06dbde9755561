"""Options and helpers shared by several commands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Protocol

import typer

from envman.hardware.host import Host
from envman.matrix.schema import Matrix

MatrixOption = Annotated[
    Path | None,
    typer.Option(
        "--matrix", help="matrix.toml to use (default: $ENVMAN_MATRIX or the built-in one).", show_default=False
    ),
]
HardwareOption = Annotated[
    str | None,
    typer.Option(
        "--hardware",
        help="Plan for another machine: cpu, cpu:64GB, or GPU[xN] such as A100-40GBx2 (default: this host).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def load(matrix_path: Path | None) -> Matrix:
    from envman.matrix.load import load_matrix

    return load_matrix(matrix_path)


def target_host(hardware: str | None, matrix: Matrix) -> Host:
    if hardware:
        from envman.hardware.spec import parse_hardware

        return parse_hardware(hardware, matrix.gpus)
    from envman.hardware.detect import detect_host

    return detect_host()


EngineOption = Annotated[str | None, typer.Option("--engine", help="Only consider this engine.", show_default=False)]
VersionOption = Annotated[
    str | None, typer.Option("--version", help="Engine version (needs --engine).", show_default=False)
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", help="Weights format: pytorch, gguf, gguf:Q4_K_M, awq, gptq, bnb, fp8, mxfp4.", show_default=False
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Override the planner's refusals (floors, known-bad, memory).")
]
ModelArgument = Annotated[str, typer.Argument(help="Catalog model name (`envman models`), alias or hub repo id.")]


class Problem(Protocol):
    """A --check finding: which file, and what is wrong with it."""

    @property
    def path(self) -> Path: ...

    @property
    def reason(self) -> str: ...


def print_check(problems: Sequence[Problem], json: bool, ok: str) -> None:
    """The output of a --check: each problem (exit 1), or the all-clear line."""
    from envman.cli._console import out, print_json

    if json:
        print_json({"ok": not problems, "problems": [{"path": str(p.path), "reason": p.reason} for p in problems]})
    else:
        for problem in problems:
            out.print(str(problem), markup=False)
        if not problems:
            out.print(ok, markup=False)
    if problems:
        raise typer.Exit(1)
