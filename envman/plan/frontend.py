"""A frontend over the engine (``--frontend xinference[==V]``): which release, and whether it can
drive an engine release.

The planner chooses the engine as usual, restricted to the releases this frontend release can
drive (``[[frontends.F.drives]]``: the engine classes, flags and version gates read from the
frontend's artifacts), and refuses the pairs the matrix knows fail (``[[frontends.F.known_bad]]``)
unless ``--force``.
"""

from __future__ import annotations

import dataclasses

from packaging.version import InvalidVersion, Version

from envman.errors import UsageError
from envman.matrix.schema import Drive, Engine, Frontend, Matrix, Support, Variant
from envman.plan.result import FrontendPlan


@dataclasses.dataclass(frozen=True)
class Chosen:
    """The frontend release a plan runs under, and why that one."""

    frontend: Frontend
    version: Version
    why: str


def choose(matrix: Matrix, text: str) -> Chosen:
    """``xinference`` (the newest known-good release) or ``xinference==1.4.0``."""
    name, _, version_text = text.partition("==")
    name = name.strip()
    frontend = matrix.frontends.get(name)
    if frontend is None:
        known = ", ".join(matrix.frontends) or "none"
        raise UsageError(f"unknown frontend {name!r}", hint=f"frontends: {known} (e.g. --frontend xinference==1.4.0)")
    if not version_text:
        if not frontend.known_good:
            raise UsageError(f"matrix.toml has no known-good {name} release", hint=f"name one: --frontend {name}==V")
        return Chosen(frontend, frontend.known_good[-1], "the newest known-good release")
    try:
        version = Version(version_text.strip())
    except InvalidVersion:
        raise UsageError(f"{version_text!r} is not a version", hint=f"e.g. --frontend {name}==1.4.0") from None
    why = "known good" if version in frontend.known_good else "requested; not yet verified"
    return Chosen(frontend, version, why)


def restrict(chosen: Chosen, engine: Engine, support: Support) -> tuple[Engine, Support, Drive] | str:
    """The engine and support with only the releases this frontend release can drive; or why none."""
    frontend, version = chosen.frontend, chosen.version
    drive = frontend.drive(version, engine.name)
    if drive is None:
        return f"{frontend.name} {version} cannot drive {engine.name} (no [[frontends.{frontend.name}.drives]] entry)"
    gate = drive.engine_versions
    floor = support.min_version

    def usable(versions: tuple[Version, ...]) -> tuple[Version, ...]:
        return tuple(v for v in versions if v in gate and (floor is None or v >= floor))

    known = usable(support.known_good) or usable(drive.known_good)
    support = dataclasses.replace(support, known_good=known)
    engine = dataclasses.replace(engine, known_good=usable(engine.known_good))
    return engine, support, drive


def gate_reasons(chosen: Chosen, drive: Drive, engine: str, version: Version, family: str) -> list[str]:
    """Why ``engine version`` under this frontend release is refused (soft: --force overrides)."""
    frontend, fv = chosen.frontend, chosen.version
    reasons = []
    if version not in drive.engine_versions:
        reasons.append(
            f"{frontend.name} {fv} drives {engine}{drive.engine_versions}, not {version}: "
            f"{drive.reason} ({drive.evidence})"
        )
    for bad in frontend.known_bad:
        if bad.applies(fv, engine, version, family):
            fixed = f"; fixed in {engine} {bad.fixed_in}" if bad.fixed_in else ""
            reasons.append(f"known bad with {frontend.name} {fv}: {bad.reason} (error: {bad.error}){fixed}")
    return reasons


def variant_for(frontend: Frontend, engine_variant: Variant) -> Variant | None:
    """The frontend's install variant for the engine variant's accelerator."""
    return next((v for v in frontend.variants.values() if v.accelerator is engine_variant.accelerator), None)


def plan_for(chosen: Chosen, drive: Drive, variant: Variant) -> FrontendPlan:
    frontend = chosen.frontend
    return FrontendPlan(
        name=frontend.name,
        version=chosen.version,
        package=frontend.package,
        command=frontend.command,
        model_engine=drive.model_engine,
        spec_version=frontend.spec_version(chosen.version),
        env=dict(drive.env),
        requirements=(*drive.requirements, *frontend.requirements.get(variant.name, ())),
        variant=variant.name,
    )


def note(plan: FrontendPlan, chosen: Chosen, drive: Drive, engine: str, engine_version: Version) -> str:
    flags = " ".join(f"{k}={v}" for k, v in plan.env.items())
    return (
        f"{plan.name} {plan.version} ({chosen.why}) drives {engine} {engine_version} as model_engine "
        f"{plan.model_engine!r}" + (f" with {flags}" if flags else "") + f": {drive.reason}"
    )
