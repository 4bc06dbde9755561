"""``envman probe FAMILY --engine E``: the first release of an engine that knows a family."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from envman.cli._app import app
from envman.cli._common import JsonOption, MatrixOption, load
from envman.errors import UsageError

if TYPE_CHECKING:
    from envman.matrix.schema import Matrix


if TYPE_CHECKING:
    from envman.probe.hoststack.stack import BuildStack


@app.command("probe")
def probe_command(
    engine: Annotated[str, typer.Option("--engine", "-e", help="Engine from the matrix.", show_default=False)],
    family: Annotated[
        str | None, typer.Argument(help="Family from the matrix (gemma3, qwen3 …).", show_default=False)
    ] = None,
    versions: Annotated[
        str | None,
        typer.Option("--versions", help="Only releases in this PEP 440 range, e.g. '>=0.7,<0.9'.", show_default=False),
    ] = None,
    host_requirements: Annotated[
        bool,
        typer.Option(
            "--host-requirements",
            help="Read what each release's wheels need from the host (CUDA runtime, driver, GPU code, glibc).",
        ),
    ] = False,
    variant: Annotated[str, typer.Option("--variant", help="Variant for --host-requirements.")] = "cuda",
    engine_rules: Annotated[
        bool,
        typer.Option(
            "--engine-rules",
            help="Read each release's own rules: model types it refuses float16 for, the quantization methods "
            "it registers and each one's minimum compute capability.",
        ),
    ] = False,
    plugins: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            help="A plugin package that registers quantization methods (vllm-bnb-plugin); repeatable. "
            "Those the releases name in Requires-Dist are read anyway.",
            show_default=False,
        ),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Write the floor (or the host requirements) and evidence into the matrix.")
    ] = False,
    matrix: MatrixOption = None,
    json_output: JsonOption = False,
) -> None:
    """Find which released versions of an engine contain a family, by reading each
    release's own model table from PyPI (nothing is installed or run); with
    --host-requirements, what each release's CUDA build needs from the host."""
    from envman.cli._console import out, print_json
    from envman.probe import ProbeTarget, probe
    from envman.probe.write import write_floor

    loaded = load(matrix)
    if engine not in loaded.engines:
        raise UsageError(f"unknown engine {engine!r}", hint=_closest(engine, loaded.engines))
    spec = _range(versions)
    if engine_rules:
        if family is not None or host_requirements:
            raise UsageError("--engine-rules takes no FAMILY and no --host-requirements", hint="Run them apart.")
        _engine_rules(loaded, engine, spec, plugins or [], write=write, json_output=json_output)
        return
    if host_requirements:
        if family is not None:
            raise UsageError("--host-requirements takes no FAMILY", hint="Drop the family: it probes every release.")
        _host_requirements(loaded, engine, variant, spec, write=write, json_output=json_output)
        return
    if family is None:
        raise UsageError("FAMILY is missing", hint="envman probe FAMILY --engine E, or --host-requirements.")
    if family not in loaded.families:
        raise UsageError(f"unknown family {family!r}", hint=_closest(family, loaded.families))

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


def _host_requirements(
    loaded: Matrix, engine: str, variant: str, spec: SpecifierSet | None, *, write: bool, json_output: bool
) -> None:
    from envman.cli._console import out, print_json
    from envman.lock.locks import lockfiles_dir
    from envman.probe.hoststack.stack import probe_variant
    from envman.probe.hoststack.write import write_host_requirements

    result = probe_variant(
        loaded.engines[engine], variant, spec, reporter=_ConsoleReporter(), lockfiles=lockfiles_dir(loaded)
    )
    if write:
        write_host_requirements(Path(loaded.path), result)
        loaded = load(Path(loaded.path))  # the written tables, validated as every load is
    if json_output:
        print_json(
            {
                "engine": engine,
                "variant": variant,
                "package": result.package,
                "seconds": result.seconds,
                "builds": [_build_json(loaded, build) for build in result.builds],
                "skipped": list(result.skipped),
            }
        )
        return
    for build in result.builds:
        needs = _build_json(loaded, build)["requires"]
        out.print(
            f"{engine} {build.version}: CUDA {build.cuda_runtime or '?'} (driver >= {needs['min_driver'] or '?'}), "
            f"SASS {', '.join(needs['compute_capabilities']) or 'none'}"
            f"{'; PTX ' + ', '.join(needs['ptx']) if needs['ptx'] else ''}, glibc {needs['glibc'] or '?'}, "
            f"{build.manylinux}, torch {build.torch or '-'}",
            markup=False,
        )
        for note in build.notes:
            out.print(f"  note: {note}", markup=False)
    for line in result.skipped:
        out.print(f"  skipped {line}", markup=False)
    out.print(f"  {len(result.builds)} releases in {result.seconds} s", markup=False)
    if write:
        out.print(f"  written to {loaded.path}", markup=False)


def _engine_rules(
    loaded: Matrix, engine: str, spec: SpecifierSet | None, plugins: list[str], *, write: bool, json_output: bool
) -> None:
    from envman import pypi
    from envman.cli._console import out, print_json
    from envman.probe.engine_rules import plugin_methods, plugin_packages, probe_engine_rules
    from envman.probe.hoststack.stack import cuda_wheel
    from envman.probe.rules_write import write_engine_rules

    if engine != "vllm":
        raise UsageError(f"--engine-rules reads vLLM's source only, not {engine}'s", hint="Use --engine vllm.")
    reporter = _ConsoleReporter()
    with reporter.status("reading the release list of vllm"):
        releases = [r for r in pypi.releases("vllm") if spec is None or spec.contains(r.version, prereleases=True)]
    releases = [r for r in releases if cuda_wheel(r) is not None]
    if not releases:
        raise UsageError(f"vllm has no release with a Linux wheel{f' in {spec}' if spec else ''} on the index")
    result = probe_engine_rules(releases, reporter=reporter)
    if result.rules:
        from envman.probe.hoststack.wheel import wheel_facts

        newest = cuda_wheel(releases[-1])
        assert newest is not None  # filtered above
        named = plugin_packages(wheel_facts(newest, lambda _name: False, key="none").requires)
        plugins = list(dict.fromkeys([*named, *plugins]))
    moved = [m for package in plugins for m in plugin_methods(package, reporter=reporter)]
    if write:
        count = write_engine_rules(Path(loaded.path), result, moved)
        load(Path(loaded.path))  # the written tables, validated as every load is
    if json_output:
        from dataclasses import asdict

        print_json(
            {
                "engine": engine,
                "seconds": result.seconds,
                "releases": [r.to_json() for r in result.rules],
                "plugins": [asdict(m) for m in moved],
                "skipped": list(result.skipped),
            }
        )
        return
    for rules in result.rules:
        refused = ", ".join(d.model_type for d in rules.refused_dtypes) or "none"
        methods = ", ".join(f"{m.name} {m.min_capability or '-'}" for m in rules.quant_methods)
        out.print(f"vllm {rules.version}: float16 refused for {refused}; methods (min CC): {methods}", markup=False)
    for method in moved:
        out.print(
            f"  plugin {method.package} {method.version}: {method.method} (min CC {method.min_capability or '-'})"
        )
    for line in result.skipped:
        out.print(f"  skipped {line}", markup=False)
    out.print(f"  {len(result.rules)} releases in {result.seconds} s", markup=False)
    if write:
        out.print(f"  {count} rules written to {loaded.path}", markup=False)


def _build_json(loaded: Matrix, build: BuildStack) -> dict[str, Any]:
    from envman.plan.requirements import requirements_from

    requires = requirements_from(loaded, build.to_record())
    return {
        "version": build.version,
        "wheel": build.wheel,
        "manylinux": build.manylinux,
        "sonames": list(build.sonames),
        "cuda_runtime_from": build.cuda_runtime_from,
        "torch": build.torch,
        "kernels": [{"library": k.library, "sass": list(k.sass), "ptx": list(k.ptx)} for k in build.kernels],
        "seconds": build.seconds,
        "notes": list(build.notes),
        "requires": requires.to_json(),
    }


def _range(versions: str | None) -> SpecifierSet | None:
    try:
        return SpecifierSet(versions) if versions else None
    except InvalidSpecifier:
        raise UsageError(
            f"--versions {versions!r} is not a version range", hint="Write it like '>=0.7,<0.9'."
        ) from None


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
