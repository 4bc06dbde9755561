"""``envman lock``: hash-pinned lockfiles for the matrix's known-good combinations."""

from __future__ import annotations

from typing import Annotated

import typer

from envman.cli._app import app, verbose
from envman.cli._common import DriverOption, JsonOption, MatrixOption, keep_for_driver, load, print_check
from envman.cli._console import out, print_json
from envman.errors import UsageError


@app.command("lock")
def lock(
    model: Annotated[str | None, typer.Argument(help="Only the combinations of this model's family.")] = None,
    family: Annotated[str | None, typer.Option("--family", help="Only this family's combinations.")] = None,
    engine: Annotated[str | None, typer.Option("--engine", help="Only this engine.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Only this engine version.")] = None,
    variant: Annotated[str | None, typer.Option("--variant", help="Only this variant (cpu, cuda …).")] = None,
    frontend: Annotated[
        str | None, typer.Option("--frontend", help="Only the pairs under this frontend (xinference==1.4.0).")
    ] = None,
    python: Annotated[str, typer.Option("--python", help="Target Python version.")] = "3.11",
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            help="Target platform (uv --python-platform); default: the variant's, else x86_64-manylinux_2_28.",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 naming each missing, stale or modified lockfile; write nothing.")
    ] = False,
    driver: DriverOption = None,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Write (or --check) one hash-pinned lockfile per engine × version × variant × Python."""
    from packaging.version import Version

    from envman.cli._model import resolve_model_arg
    from envman.cli._reporter import RichReporter
    from envman.lock import locks
    from envman.lock.uv import Uv, find_uv
    from envman.matrix import combinations
    from envman.matrix.combinations import Combination

    loaded = load(matrix)
    if model:  # any MODEL form selects its family's combinations
        if family:
            raise UsageError("name a model or a --family, not both")
        family = resolve_model_arg(loaded, model).model.family
    selected, everything = combinations.select(
        loaded, family=family, engine=engine, version=version, variant=variant,
        frontends=bool(frontend) or not (model or family or engine or version or variant),
    )  # fmt: skip
    if frontend:
        selected = [c for c in selected if c.frontend == frontend or c.frontend.partition("==")[0] == frontend]
        everything = False
    if driver is not None:  # only the builds whose CUDA runtime that driver runs
        selected, everything = keep_for_driver(loaded, selected, driver), False
    directory = locks.lockfiles_dir(loaded)
    if check:
        problems = locks.check(loaded, directory, selected, select_all=everything)
        print_check(problems, json, f"{len(selected)} lockfiles up to date in {directory}")
        return
    if not selected:
        if not (engine and version and variant):
            raise UsageError(
                "no known-good combination matches",
                hint="name one with --engine E --version V --variant V to lock it on the fly",
            )
        selected = [Combination(engine, Version(version), variant, frontend or "")]
        directory = locks.onthefly_dir()
    reporter = RichReporter(verbose())
    uv = Uv(find_uv(), reporter, verbose=verbose())
    written = []
    for combination in selected:
        request = locks.request_for(loaded, combination, python=python, platform=platform)
        path = locks.lock(request, directory, uv, reporter)
        written.append({"path": str(path), "engine": request.engine, "version": request.version,
                        "variant": request.variant, "inputs": request.inputs_digest()})  # fmt: skip
        if not json:
            out.print(f"locked {combination}: {path}", markup=False)
    if json:
        print_json(written)
