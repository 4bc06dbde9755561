"""``envman verify``: smoke the known-good combinations, or sweep released versions."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer

from envman.cli._app import app, verbose
from envman.cli._common import HardwareOption, JobsOption, MatrixOption, bounded, load, target_host
from envman.cli._console import err, out
from envman.errors import UsageError


@app.command("verify")
def verify(
    family: Annotated[str | None, typer.Option("--family", help="Only this family.")] = None,
    engine: Annotated[str | None, typer.Option("--engine", help="Only this engine.")] = None,
    versions: Annotated[
        str | None,
        typer.Option(
            "--versions",
            help="Sweep released versions from PyPI: 'all' (from each family's floor), a specifier "
            "('>=0.1.10'), or a list ('0.1.10,0.1.11'; below a floor too). Default: the known-good ones.",
        ),
    ] = None,
    one: Annotated[
        bool,
        typer.Option("--sample", help="One cell per engine: its newest known-good version on one family (CI's smoke)."),
    ] = False,
    jobs: JobsOption = 1,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Run every cell again (ignore the proven cells of earlier sweeps).")
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a report: FILE.md (Markdown) or FILE.html.")
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Commit the evidence into evidence/ and write verified/known_bad/known_good into matrix.toml.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds each engine may take to start.", callback=bounded("--timeout"))
    ] = 600,
    hardware: HardwareOption = None,
    matrix: MatrixOption = None,
) -> None:
    """Smoke every known-good combination this host can run (or a sweep of releases); exit 1 if one fails."""
    from envman.cli._reporter import RichReporter
    from envman.verify import versions as version_specs
    from envman.verify.cases import parity
    from envman.verify.record import record as record_outcomes
    from envman.verify.report import write_report
    from envman.verify.sweep import Progress
    from envman.verify.sweep import verify as run

    loaded = load(matrix)
    if family and family not in loaded.families:
        raise UsageError(f"unknown family {family!r}", hint="`envman matrix` lists the families")
    if engine and engine not in loaded.engines:
        raise UsageError(f"unknown engine {engine!r}", hint=f"engines: {', '.join(loaded.engines)}")
    spec = version_specs.parse(versions) if versions is not None else None
    if spec is not None and not spec.every and not engine:
        raise UsageError(f"--versions {versions!r} needs --engine", hint="version numbers are one engine's")
    host = target_host(hardware, loaded)
    when = dt.datetime.now(dt.UTC)
    started = time.monotonic()

    def done(p: Progress) -> None:
        o = p.outcome
        seconds = f" {o.seconds:.1f}s" if o.status != "skip" else ""
        again = " (proven earlier)" if o.resumed else ""
        out.print(f"{o.status.upper():4}  {o.case.label}{seconds}{again}: {o.detail}", markup=False)
        err.print(f"verify: [{p.index}/{p.total}] {o.status} {o.case.label}{seconds}{again}", markup=False)

    outcomes = run(
        loaded, host, family=family, engine=engine, spec=spec, jobs=jobs, timeout=timeout, resume=not fresh,
        one_per_engine=one, reporter=RichReporter(verbose()), on_done=done,
    )  # fmt: skip
    for same in parity(outcomes):
        out.print(f"PARITY {'same' if same.same else 'DIFFERENT'}: {same.describe()}", markup=False)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "skip")}
    resumed = sum(o.resumed for o in outcomes)
    out.print(
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped "
        f"({resumed} proven earlier; {time.monotonic() - started:.0f} s)",
        markup=False,
    )
    links: dict[str, Path] = {}
    if record:
        passes, failures, links = record_outcomes(Path(loaded.path), outcomes, host, when)
        out.print(
            f"recorded {passes} verified and {failures} known-bad cells in {loaded.path} "
            f"(evidence: {len(set(links.values()))} files in {Path(loaded.path).parent / 'evidence'})",
            markup=False,
        )
    if report:
        out.print(f"report: {write_report(report, outcomes, host, when, links)}", markup=False)
    if counts["fail"] and spec is None:
        raise typer.Exit(1)
