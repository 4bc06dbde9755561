"""``envman diagnose LOGFILE|-``: known causes and fixes for an engine's error output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import JsonOption, MatrixOption, load
from envman.cli._console import out, print_json
from envman.errors import UsageError


@app.command("diagnose")
def diagnose(
    logfile: Annotated[str, typer.Argument(help="The engine's log file, or - for standard input.")],
    engine: Annotated[str | None, typer.Option("--engine", help="The engine that wrote the log.")] = None,
    family: Annotated[str | None, typer.Option("--family", help="The model family that was loading.")] = None,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Match a log against known failure signatures; print cause and fix (exit 1 if nothing matched)."""
    from envman.diagnose import diagnose as run

    if logfile == "-":
        text = sys.stdin.read()
    else:
        path = Path(logfile)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise UsageError(f"log file {logfile} does not exist", hint="pass a path, or - to read stdin") from None
        except IsADirectoryError:
            raise UsageError(f"{logfile} is a directory, not a log file") from None
    loaded = load(matrix)
    if engine and engine not in loaded.engines:
        raise UsageError(f"unknown engine {engine!r}", hint=f"engines: {', '.join(loaded.engines)}")
    if family and family not in loaded.families:
        raise UsageError(f"unknown family {family!r}", hint="`envman matrix` lists the families")
    findings = run(text, loaded, engine=engine, family=family)
    if json:
        print_json({"matched": bool(findings), "findings": [f.to_json() for f in findings]})
    elif not findings:
        out.print("no known failure signature matched", markup=False)
    for finding in [] if json else findings:
        out.print(f"[bold red]{finding.id}[/]  ({finding.entry})", highlight=False)
        out.print(f"  line:  {finding.line}", markup=False)
        out.print(f"  cause: {finding.cause}", markup=False)
        out.print(f"  fix:   {finding.fix}", markup=False)
    if not findings:
        raise typer.Exit(1)
