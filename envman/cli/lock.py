"""``envman lock``: hash-pinned lockfiles for the matrix's known-good combinations."""

from __future__ import annotations

from typing import Annotated

import typer

from envman.cli._app import app, verbose
from envman.cli._common import JsonOption, MatrixOption, load
from envman.cli._console import out, print_json
from envman.errors import UsageError


@app.command("lock")
def lock(
    model: Annotated[str | None, typer.Argument(help="Only the combinations of this model's family.")] = None,
    family: Annotated[str | None, typer.Option("--family", help="Only this family's combinations.")] = None,
    engine: Annotated[str | None, typer.Option("--engine", help="Only this engine.")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Only this engine version.")] = None,
    variant: Annotated[str | None, typer.Option("--variant", help="Only this variant (cpu, cuda …).")] = None,
    python: Annotated[str, typer.Option("--python", help="Target Python version.")] = "3.11",
    platform: Annotated[
        str, typer.Option("--platform", help="Target platform (uv --python-platform).")
    ] = "x86_64-manylinux_2_28",
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 naming each missing, stale or modified lockfile; write nothing.")
    ] = False,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Write (or --check) one hash-pinned lockfile per engine × version × variant × Python."""
    from packaging.version import InvalidVersion, Version

    from envman import locks
    from envman.cli._reporter import RichReporter
    from envman.plan.planner import resolve_model
    from envman.uv import Uv, find_uv

    loaded = load(matrix)
    families = None
    if model:
        families = [resolve_model(loaded, model)[0].family]
    if family:
        if family not in loaded.families:
            raise UsageError(f"unknown family {family!r}", hint="`envman matrix` lists the families")
        families = [family]
    if engine and engine not in loaded.engines:
        raise UsageError(f"unknown engine {engine!r}", hint=f"engines: {', '.join(loaded.engines)}")
    if variant and engine and variant not in loaded.engines[engine].variants:
        raise UsageError(
            f"{engine} has no variant {variant!r}", hint=f"variants: {', '.join(loaded.engines[engine].variants)}"
        )
    if version:
        try:
            Version(version)
        except InvalidVersion:
            raise UsageError(f"{version!r} is not a version") from None
    selected = locks.known_good(loaded, families=families, engine=engine, version=version, variant=variant)
    directory = locks.lockfiles_dir(loaded)
    everything = not (model or family or engine or version or variant)
    if check:
        problems = locks.check(loaded, directory, selected, select_all=everything)
        if json:
            print_json({"ok": not problems, "problems": [{"path": str(p.path), "reason": p.reason} for p in problems]})
        for problem in [] if json else problems:
            out.print(str(problem), markup=False)
        if problems:
            raise typer.Exit(1)
        if not json:
            out.print(f"{len(selected)} lockfiles up to date in {directory}", markup=False)
        return
    if not selected:
        if not (engine and version and variant):
            raise UsageError(
                "no known-good combination matches",
                hint="name one with --engine E --version V --variant V to lock it on the fly",
            )
        selected = [locks.Combination(engine, Version(version), variant)]
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
