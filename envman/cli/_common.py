"""Options and helpers shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
