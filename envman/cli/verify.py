"""``envman verify``: smoke every known-good combination this host can run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from envman.cli._app import app, verbose
from envman.cli._common import HardwareOption, JobsOption, MatrixOption, bounded, load, target_host
from envman.cli._console import out
from envman.errors import UsageError


@app.command("verify")
def verify(
    family: Annotated[str | None, typer.Option("--family", help="Only this family.")] = None,
    engine: Annotated[str | None, typer.Option("--engine", help="Only this engine.")] = None,
    jobs: JobsOption = 1,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a report: FILE.md (Markdown) or FILE.html.")
    ] = None,
    record: Annotated[
        bool, typer.Option("--record", help="Write the passes into matrix.toml ([[…verified]] entries).")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds each engine may take to start.", callback=bounded("--timeout"))
    ] = 600,
    hardware: HardwareOption = None,
    matrix: MatrixOption = None,
) -> None:
    """Smoke every known-good combination this host can run; exit 1 if one fails."""
    from envman.cli._reporter import RichReporter
    from envman.verify.cases import Outcome, write_report
    from envman.verify.cases import record as record_passes
    from envman.verify.cases import verify as run

    loaded = load(matrix)
    if family and family not in loaded.families:
        raise UsageError(f"unknown family {family!r}", hint="`envman matrix` lists the families")
    if engine and engine not in loaded.engines:
        raise UsageError(f"unknown engine {engine!r}", hint=f"engines: {', '.join(loaded.engines)}")
    host = target_host(hardware, loaded)
    when = dt.datetime.now(dt.UTC)

    def done(o: Outcome) -> None:
        seconds = f" {o.seconds:.1f}s" if o.status != "skip" else ""
        out.print(f"{o.status.upper():4}  {o.case.label}{seconds}: {o.detail}", markup=False)

    outcomes = run(
        loaded, host, family=family, engine=engine, jobs=jobs, timeout=timeout, reporter=RichReporter(verbose()),
        on_done=done,
    )  # fmt: skip
    from envman.verify.cases import parity

    for same in parity(outcomes):
        out.print(f"PARITY {'same' if same.same else 'DIFFERENT'}: {same.describe()}", markup=False)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "skip")}
    out.print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped", markup=False)
    if report:
        out.print(f"report: {write_report(report, outcomes, host, when)}", markup=False)
    if record:
        n = record_passes(Path(loaded.path), outcomes, host, when)
        out.print(f"recorded {n} verified combinations in {loaded.path}", markup=False)
    if counts["fail"]:
        raise typer.Exit(1)
