"""``envman probe FAMILY --engine E``: the first release of an engine that knows a family."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import JsonOption, MatrixOption, load
from envman.errors import UsageError


@app.command("probe")
def probe_command(
    family: Annotated[str, typer.Argument(help="Family from the matrix (gemma3, qwen3 …).", show_default=False)],
    engine: Annotated[str, typer.Option("--engine", "-e", help="Engine from the matrix.", show_default=False)],
    versions: Annotated[
        str | None,
        typer.Option("--versions", help="Only releases in this PEP 440 range, e.g. '>=0.7,<0.9'.", show_default=False),
    ] = None,
    write: Annotated[bool, typer.Option("--write", help="Write min_version and evidence into the matrix.")] = False,
    matrix: MatrixOption = None,
    json_output: JsonOption = False,
) -> None:
    """Find which released versions of an engine contain a family, by reading each
    release's own model table from PyPI (nothing is installed or run)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from envman.cli._console import out, print_json
    from envman.probe import ProbeTarget, probe
    from envman.probe.write import write_floor

    loaded = load(matrix)
    if family not in loaded.families:
        raise UsageError(f"unknown family {family!r}", hint=_closest(family, loaded.families))
    if engine not in loaded.engines:
        raise UsageError(f"unknown engine {engine!r}", hint=_closest(engine, loaded.engines))
    try:
        spec = SpecifierSet(versions) if versions else None
    except InvalidSpecifier:
        raise UsageError(
            f"--versions {versions!r} is not a version range", hint="Write it like '>=0.7,<0.9'."
        ) from None

    target = ProbeTarget.of(loaded.families[family], loaded.engines[engine])
    result = probe(target, versions=spec, reporter=_ConsoleReporter())
    if write:
        write_floor(Path(loaded.path), result)

    if json_output:
        print_json(
            {
                "family": family,
                "engine": engine,
                "min_version": str(result.min_version) if result.min_version else None,
                "removed_in": str(result.removed_in) if result.removed_in else None,
                "evidence": result.evidence,
                "examined": [
                    {"version": str(e.version), "supported": e.supported, "artifact": e.artifact}
                    for e in result.examined
                ],
            }
        )
        return
    if result.min_version is None:
        out.print(f"{engine}: no release knows {family} ({' / '.join(target.names)})")
    else:
        out.print(f"{engine}>={result.min_version} knows {family}")
    if result.removed_in is not None:
        out.print(f"  removed again in {engine} {result.removed_in}")
    marks = ", ".join(f"{e.version} {'yes' if e.supported else 'no'}" for e in result.examined)
    out.print(f"  examined {len(result.examined)} of {result.releases} releases: {marks}")
    out.print(f"  evidence: {result.evidence}")
    if write:
        out.print(f"  written to {loaded.path}")


def _closest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f"Did you mean {', '.join(close)}?" if close else f"Known: {', '.join(sorted(known))}."


class _ConsoleReporter:
    """Spinners and details on stderr (details only with -v)."""

    def info(self, message: str) -> None:
        from envman.cli._console import err

        err.print(message, markup=False)

    def warn(self, message: str) -> None:
        from envman.cli._console import err

        err.print(f"[yellow]warning:[/] {message}")

    def detail(self, message: str) -> None:
        from envman.cli._app import verbose
        from envman.cli._console import err

        if verbose():
            err.print(message, markup=False)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        from envman.cli._console import err

        with err.status(message):
            yield
