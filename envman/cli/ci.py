"""``envman ci``: the CI matrix (builds and smokes per combination) and its GitHub Actions workflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from envman.cli._app import app, verbose
from envman.cli._common import JsonOption, MatrixOption, bounded, print_check
from envman.cli._console import out, print_json
from envman.errors import UsageError
from envman.files import atomic_write

ci_app = typer.Typer(help="CI: the matrix of image builds and smokes, and its workflow.", no_args_is_help=True)
app.add_typer(ci_app, name="ci")


def _public(matrix: Path | None):  # type: ignore[no-untyped-def]
    from envman.docker.dockerfile import public_matrix
    from envman.paths import default_matrix

    return public_matrix(matrix or default_matrix())


@ci_app.command("matrix")
def ci_matrix(
    format: Annotated[str, typer.Option("--format", help="github (one line for strategy.matrix) or json.")] = "json",
    shard: Annotated[str | None, typer.Option("--shard", help="Only shard I of N (1-based), e.g. 2/4.")] = None,
    matrix: MatrixOption = None,
) -> None:
    """Print the combinations: family, engine, version, variant, runner (cpu, or gpu with its floors)."""
    from envman.ci import matrix as ci

    if format not in ("github", "json"):
        raise UsageError(f"--format {format!r} is not github or json")
    selected = ci.rows(_public(matrix))
    if shard:
        selected = ci.shard(selected, *ci.parse_shard(shard))
    if format == "github":
        print(ci.github_matrix(selected))
    else:
        print_json([row.to_json() for row in selected])


@ci_app.command("workflow")
def ci_workflow(
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if the committed workflow is not current.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Where the workflow goes (default: .github/workflows/ beside matrix.toml)."),
    ] = None,
    matrix: MatrixOption = None,
) -> None:
    """Write .github/workflows/envman-matrix.yml: per combination, build the image and smoke it."""
    from envman.ci import workflow as ci

    loaded = _public(matrix)
    path = output or Path(loaded.path).parent / ci.WORKFLOW
    if check:
        print_check(ci.check_workflow(loaded, path), False, f"{path} is up to date")
        return
    atomic_write(path, ci.workflow(loaded))  # creates the folder, or exits 3 naming it
    out.print(f"wrote {path}", markup=False)


@ci_app.command("smoke")
def ci_smoke(
    engine: Annotated[str, typer.Option("--engine", help="Engine of the combination.")],
    version: Annotated[str, typer.Option("--version", help="Its version.")],
    variant: Annotated[str, typer.Option("--variant", help="Its variant.")],
    model: Annotated[
        str | None, typer.Option("--model", help="Model to serve (default: the image's smoke model).")
    ] = None,
    base_image: Annotated[str | None, typer.Option("--base-image", help="Base image instead of the default.")] = None,
    extra_ca: Annotated[Path | None, typer.Option("--extra-ca", help="PEM CA bundle the build trusts.")] = None,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Build a combination's image from its Dockerfile, run it, and ask one chat completion."""
    from envman.ci import matrix as ci
    from envman.cli._reporter import RichReporter
    from envman.cli.smoke import show_result
    from envman.docker.context import selected_combinations

    loaded = _public(matrix)
    found, _ = selected_combinations(loaded, engine=engine, version=version, variant=variant)
    result = ci.smoke_combination(
        loaded, found[0], model=model, base_image=base_image, extra_ca=extra_ca, reporter=RichReporter(verbose())
    )
    show_result(result, json)


@ci_app.command("runner-check")
def ci_runner_check(
    min_compute_capability: Annotated[str, typer.Option("--min-compute-capability", help="e.g. 7.5")],
    min_memory_gib: Annotated[
        float, typer.Option("--min-memory-gib", help="GPU memory the job needs.", callback=bounded("--min-memory-gib"))
    ],
    min_driver: Annotated[
        str, typer.Option("--min-driver", help="NVIDIA driver the build's CUDA runtime needs, e.g. 580.65.06.")
    ] = "",
) -> None:
    """Exit 1 unless this machine's GPU and driver meet the job's floors (GPU jobs run it first)."""
    from envman.ci import matrix as ci

    out.print(ci.runner_check(min_compute_capability, min_memory_gib, min_driver), markup=False)
