"""Which combinations get a lockfile, how one is made, and whether the committed ones are current.

A combination is engine × version × variant. The matrix's known-good versions (per family,
else the engine's) give the committed set in ``lockfiles/``; any other version is locked
on the fly into ``$ENVMAN_HOME/locks``. Each lock resolves as of the day after the
release (uv ``--exclude-newer``), so an old engine gets the libraries it shipped with.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from packaging.version import Version

from envman import generated, paths
from envman.errors import ConfigError, UsageError
from envman.files import atomic_write, ensure_dir
from envman.generated import Expected, Problem
from envman.lock import lockfile
from envman.lock.lockfile import LockRequest
from envman.lock.uv import Sources, Uv
from envman.matrix.combinations import Combination
from envman.matrix.engine_rules import locked_plugins
from envman.matrix.overrides import configure_hint
from envman.matrix.schema import Engine, Matrix, Variant
from envman.report import NullReporter, Reporter


def lockfiles_dir(matrix: Matrix) -> Path:
    """The committed lockfiles: ``lockfiles/`` beside matrix.toml (``ENVMAN_LOCKFILES`` overrides)."""
    configured = os.environ.get("ENVMAN_LOCKFILES")
    return Path(configured) if configured else Path(matrix.path).parent / "lockfiles"


def _day_after(date: str) -> str:
    day = dt.date.fromisoformat(date) + dt.timedelta(days=1)
    return f"{day.isoformat()}T00:00:00Z"


def _release_date(package: str, version: Version, dates: dict[str, str], offline: bool) -> str:
    date = dates.get(str(version))
    if date:
        return date
    if offline:
        raise ConfigError(
            f"matrix.toml has no release date for {package} {version}",
            hint=f"add it to the releases table of its engine (PyPI upload date of {package} {version})",
        )
    from envman import pypi

    for release in pypi.releases(package):
        if release.version == version:
            return release.date
    raise UsageError(f"{package} has no release {version} on the package index")


def request_for(
    matrix: Matrix,
    combination: Combination,
    *,
    python: str = lockfile.DEFAULT_PYTHON,
    platform: str | None = None,
    offline: bool = False,
) -> LockRequest:
    """The lock request of a combination; release dates from the matrix, else from PyPI.

    ``platform`` None: the variant's own (``platform`` in matrix.toml), else the default.
    """
    engine: Engine = matrix.engines[combination.engine]
    var: Variant = engine.variants[combination.variant]
    version = combination.version
    from packaging.requirements import Requirement  # ~30 ms: not on a no-op build's path

    package_name = Requirement(var.package).name
    engine_date = _release_date(engine.package, version, dict(engine.releases), offline)
    exclude_newer_packages: tuple[tuple[str, str], ...] = ()
    if package_name != engine.package:
        own = dict(var.releases)
        if str(version) in own or not offline:
            variant_date = _release_date(package_name, version, own, offline)
            if variant_date > engine_date:  # uploaded later than the engine: let the lock see it
                exclude_newer_packages = ((package_name, _day_after(variant_date)),)
    newer = _newer_than(var, engine_date)
    exclude_newer_packages = tuple(sorted({**newer, **dict(exclude_newer_packages)}.items()))
    if var.own_index == "index_url":
        # A project's own index (a static page such as xllamacpp's) states no upload dates, and uv drops
        # files without one under --exclude-newer ("missing an upload date", seen with uv 0.13.9): the
        # engine, pinned exactly, is exempt; everything else still resolves as of the release's day.
        exclude_newer_packages = (*exclude_newer_packages, (package_name, "false"))
    applying = [o for o in engine.dependency_overrides if version in o.versions]
    overrides = tuple(r for o in applying if o.force for r in o.requirements)
    beside = tuple(r for o in applying if not o.force for r in o.requirements)
    beside += locked_plugins(matrix, engine.name, version, var)
    request = LockRequest(
        engine=engine.name,
        version=str(version),
        variant=var.name,
        package=var.package,
        python=python,
        platform=platform or var.platform or _wheel_platform(matrix, combination) or lockfile.DEFAULT_PLATFORM,
        exclude_newer=_day_after(engine_date),
        exclude_newer_packages=exclude_newer_packages,
        newer_reason=var.newer_reason if newer else "",
        exclude=var.exclude,
        overrides=overrides,
        with_requirements=(*var.requirements, *beside),
        index_url=var.index_url,
        extra_index_urls=var.extra_index_urls,
        find_links=var.find_links,
        local_version=var.local_version,
    )
    if not var.configured:
        raise UsageError(
            f"{engine.name}/{var.name} has no {var.own_index} configured: {var.lock_note or var.evidence}",
            hint=configure_hint(engine.name, var),
        )
    return _under_frontend(matrix, combination, request, offline) if combination.frontend else request


def _newer_than(var: Variant, engine_date: str) -> dict[str, str]:
    """The variant's ``newer`` packages whose day is after the engine's release (uv
    ``--exclude-newer-package``): torch 2.13.0+cpu needs setuptools>=77.0.3 (2025-03-20),
    which transformers 4.28 (2023-04) could not see. Where the engine is newer, its own date
    already lets them in, and its lock stays as it was."""
    return {package: _day_after(day) for package, day in var.newer.items() if day > engine_date}


def _wheel_platform(matrix: Matrix, combination: Combination) -> str | None:
    """The probed wheel's own glibc where it is above the default's: vllm 0.19.1 has only a
    manylinux_2_31 wheel, and a manylinux_2_28 lock would fall back to building the sdist."""
    record = matrix.build_requirements.get((combination.engine, combination.variant, str(combination.version)))
    tag = record.manylinux if record is not None else ""
    parts = tag.split("_")  # manylinux_2_31_x86_64
    if len(parts) < 4 or parts[0] != "manylinux" or not (parts[1].isdigit() and parts[2].isdigit()):
        return None  # legacy tags (manylinux1, manylinux2014) are below the default
    default = lockfile.DEFAULT_PLATFORM.split("_")  # x86_64-manylinux_2_28
    if (int(parts[1]), int(parts[2])) <= (int(default[-2]), int(default[-1])):
        return None
    return f"x86_64-manylinux_{parts[1]}_{parts[2]}"


def _under_frontend(matrix: Matrix, combination: Combination, request: LockRequest, offline: bool) -> LockRequest:
    """The engine's lock request with the frontend locked beside it (``xinference==1.4.0``).

    The resolution date is the later of the two releases; the frontend variant's sources join
    the engine's, and its ``newer`` packages (a CPU torch that postdates an old frontend) may
    be as new as the matrix says.
    """
    name, _, text = combination.frontend.partition("==")
    frontend = matrix.frontends.get(name)
    if frontend is None:
        raise UsageError(f"unknown frontend {name!r}", hint=f"frontends: {', '.join(matrix.frontends) or 'none'}")
    version = Version(text)
    var = matrix.engines[combination.engine].variants[combination.variant]
    fvar = next((v for v in frontend.variants.values() if v.accelerator is var.accelerator), None)
    drive = frontend.drive(version, combination.engine)
    if fvar is None or drive is None:
        raise UsageError(f"{name} {version} cannot drive {combination.engine} ({var.accelerator.value})")
    date = _day_after(_release_date(frontend.package, version, dict(frontend.releases), offline))
    newer = dict(request.exclude_newer_packages)
    if request.exclude_newer > date:  # the engine is newer than the frontend: the frontend's date binds the rest
        from packaging.requirements import Requirement

        newer.setdefault(Requirement(var.package).name, request.exclude_newer)
    newer |= {pkg: _day_after(day) for pkg, day in frontend.newer.get(fvar.name, {}).items()}
    return dataclasses.replace(
        request,
        frontend=combination.frontend,
        requirements=(*drive.requirements, *frontend.requirements.get(fvar.name, ())),
        exclude_newer=date,
        exclude_newer_packages=tuple(sorted(newer.items())),
        exclude=tuple(dict.fromkeys((*request.exclude, *fvar.exclude))),
        index_url=request.index_url or fvar.index_url,
        extra_index_urls=tuple(dict.fromkeys((*request.extra_index_urls, *fvar.extra_index_urls))),
        find_links=tuple(dict.fromkeys((*request.find_links, *fvar.find_links))),
    )


def sources_of(request: LockRequest) -> Sources:
    return Sources(request.index_url, request.extra_index_urls, request.find_links)


def lock(request: LockRequest, directory: Path, uv: Uv, reporter: Reporter | None = None) -> Path:
    """Resolve ``request`` with uv and write its lockfile into ``directory`` (atomically)."""
    reporter = reporter or NullReporter()
    ensure_dir(directory)
    target = directory / request.filename
    with tempfile.TemporaryDirectory(prefix="envman-lock-") as tmp:
        work = Path(tmp)
        requirements = work / "requirements.in"
        requirements.write_text(request.requirements_in(), encoding="utf-8")
        overrides = None
        if request.override_lines():
            overrides = work / "overrides.txt"
            overrides.write_text("\n".join(request.override_lines()) + "\n", encoding="utf-8")
        output = work / "lock.txt"
        with reporter.status(f"resolving {request.requirement} for Python {request.python} ({request.platform})"):
            uv.compile(
                requirements,
                output,
                python_version=request.python,
                platform=request.platform,
                exclude_newer=request.exclude_newer,
                sources=sources_of(request),
                overrides=overrides,
                exclude_newer_packages=dict(request.exclude_newer_packages),
            )
        text = lockfile.render(request, output.read_text(encoding="utf-8"))
        atomic_write(target, text)
    return target


def onthefly_dir() -> Path:
    return paths.home() / "locks"  # created (checked) by lock() when one is written


def check(matrix: Matrix, directory: Path, combinations: list[Combination], select_all: bool) -> list[Problem]:
    """Committed lockfiles that are missing, stale (inputs changed), tampered, or orphaned."""

    def verdict(path: Path, request: LockRequest) -> Callable[[str], str | None]:
        def stale(text: str) -> str | None:
            try:
                existing = lockfile.read(path)
                existing.verify()
            except ConfigError as error:
                return error.message
            if existing.inputs != request.inputs_digest():
                return "stale: the matrix changed since it was locked"
            return None

        return stale

    expected = []
    for combination in combinations:
        request = request_for(matrix, combination, offline=True)
        path = directory / request.filename
        expected.append(Expected(path, request.command(), verdict(path, request)))
    return generated.check(
        expected,
        orphans_in=directory if select_all else None,
        pattern="*.txt",
        orphan_hint="no known-good combination of matrix.toml locks it",
    )
