"""Options and helpers shared by several commands."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import typer

from envman.errors import UsageError

if TYPE_CHECKING:
    from envman.hardware.host import Host
    from envman.matrix.schema import Matrix


MAX_GPU_COUNT = 1024  # as envman.hardware.spec (kept here: --help must not load the matrix schema)

N = TypeVar("N", int, float, int | None, float | None)


@dataclass(frozen=True)
class Bound:
    """The values a numeric option takes: ``low`` to ``high``, ``low`` itself only if not ``open_low``."""

    low: float
    high: float
    open_low: bool = False
    unit: str = ""

    def describe(self) -> str:
        low, high = f"{self.low:g}{self.unit}", f"{self.high:g}{self.unit}"
        return f"more than {low} and at most {high}" if self.open_low else f"between {low} and {high}"


# Every numeric option of every command, in one place. A value outside is exit 2, before
# anything runs: a huge --max-model-len or --jobs would otherwise cost minutes and gigabytes.
BOUNDS: dict[str, Bound] = {
    "--port": Bound(0, 65535),
    "--max-model-len": Bound(1, 16 * 1024 * 1024, unit=" tokens"),
    "--tensor-parallel-size": Bound(1, MAX_GPU_COUNT),
    "--gpu-memory-utilization": Bound(0, 1, open_low=True),
    "--timeout": Bound(0, 7 * 86400, open_low=True, unit=" s"),
    "--jobs": Bound(1, 64),
    "--older-than": Bound(0, 100 * 365 * 86400, unit=" s"),
    "--min-memory-gib": Bound(0, 64 * 1024),
    "--nodes": Bound(1, 64),
}


def within(option: str, value: N) -> N:
    """``value`` if it is a finite number inside ``BOUNDS[option]``; a UsageError (exit 2) if not."""
    if value is None:
        return value
    bound = BOUNDS[option]
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{option} {value} is not a finite number", hint=f"{option} must be {bound.describe()}")
    below = value <= bound.low if bound.open_low else value < bound.low
    if below or value > bound.high:
        raise UsageError(f"{option} {value} is out of range", hint=f"{option} must be {bound.describe()}")
    return value


def bounded(option: str) -> Callable[[N], N]:
    """A typer callback that checks the option's value against ``BOUNDS``."""

    def check(value: N) -> N:
        return within(option, value)

    return check


def tensor_parallel_size(text: str) -> int | None:
    """``--tensor-parallel-size N|auto`` (`envman up`): None for auto, else a bounded count."""
    if text.strip().casefold() == "auto":
        return None
    if not text.strip().isdigit() or len(text.strip()) > 8:
        if text.strip().isdigit():
            return within("--tensor-parallel-size", MAX_GPU_COUNT + 1)
        raise UsageError(f"--tensor-parallel-size {text!r} is not a number or auto")
    return within("--tensor-parallel-size", int(text))


PortOption = Annotated[
    int, typer.Option("--port", help="Port to serve on (0: a free one).", callback=bounded("--port"))
]
MaxModelLenOption = Annotated[
    int | None, typer.Option("--max-model-len", help="Context length.", callback=bounded("--max-model-len"))
]
TensorParallelSizeOption = Annotated[
    int | None,
    typer.Option(
        "--tensor-parallel-size", help="Force a tensor-parallel size.", callback=bounded("--tensor-parallel-size")
    ),
]
GpuMemoryUtilizationOption = Annotated[
    float | None,
    typer.Option(
        "--gpu-memory-utilization",
        help="Share of GPU memory the engine may take.",
        callback=bounded("--gpu-memory-utilization"),
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", help="Seconds the engine may take to become ready.", callback=bounded("--timeout")),
]
NodesOption = Annotated[
    int | None,
    typer.Option(
        "--nodes",
        help="Plan for up to N identical nodes of --hardware (the fewest that fit; default 1).",
        callback=bounded("--nodes"),
    ),
]
NetworkInterfaceOption = Annotated[
    str | None,
    typer.Option(
        "--network-interface",
        help="With --nodes: the interface the nodes reach each other through (sets NCCL_SOCKET_IFNAME, "
        "GLOO_SOCKET_IFNAME … where the engine documents them).",
        show_default=False,
    ),
]
JobsOption = Annotated[int, typer.Option("--jobs", help="Smokes run at once.", callback=bounded("--jobs"))]

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


def target_host(hardware: str | None, matrix: Matrix, driver: str | None = None) -> Host:
    """The host a plan is for: detected, or named with --hardware; --driver names its NVIDIA driver."""
    if hardware:
        from envman.hardware.spec import parse_hardware

        host = parse_hardware(hardware, matrix.gpus)
    else:
        from envman.hardware.detect import detect_host

        host = detect_host()
    if driver is None:
        return host
    from envman.hardware.spec import with_host_stack

    return with_host_stack(host, driver=driver)


DriverOption = Annotated[
    str | None,
    typer.Option(
        "--driver",
        help="The target's NVIDIA driver (e.g. 550.54.15): plans only builds whose CUDA runtime it can run.",
        show_default=False,
    ),
]


EngineOption = Annotated[str | None, typer.Option("--engine", help="Only consider this engine.", show_default=False)]
VersionOption = Annotated[
    str | None, typer.Option("--version", help="Engine version (needs --engine).", show_default=False)
]
FrontendOption = Annotated[
    str | None,
    typer.Option(
        "--frontend",
        help="Serve under a frontend: xinference, or xinference==1.4.0 (default: its newest known-good release).",
        show_default=False,
    ),
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


def keep_for_driver(matrix: Matrix, selected: list[Any], driver: str) -> list[Any]:
    """The combinations whose CUDA build runs on ``driver`` (CPU builds always), the others
    named on stderr with the driver they need; none left is a usage error."""
    from envman.cli._console import err
    from envman.plan.requirements import driver_refusal, valid_driver

    if not valid_driver(driver):
        raise UsageError(f"--driver {driver!r} is not a driver version", hint="e.g. --driver 550.54.15")
    kept = []
    for combination in selected:
        why = driver_refusal(matrix, combination.engine, str(combination.version), combination.variant, driver)
        if why is None:
            kept.append(combination)
        else:
            err.print(f"skipped {why}", markup=False)
    if not kept:
        raise UsageError(
            f"no selected build runs on driver {driver}", hint="upgrade the driver, or select older releases"
        )
    return kept
