"""Which builds and versions of an engine a plan may use on a host: variants, floors, known-good
pins, known-bad ranges, per-release hardware limits."""

from __future__ import annotations

from collections.abc import Iterator

from packaging.version import Version

from envman.hardware.host import Host
from envman.matrix.schema import Engine, Support, Variant
from envman.plan.request import PlanRequest


def usable_variants(engine: Engine, host: Host, reject: object) -> list[Variant]:
    """The engine's builds for this host's accelerator, OS, CPU architecture and compute capability."""
    usable = []
    for variant in engine.variants.values():
        if not variant.configured:
            # a vendor build with no location configured: not a candidate, and not noise in every
            # refusal; the driver refusal it would answer names it (Planner._vendor_build)
            continue
        why = None
        if variant.accelerator is not host.accelerator:
            why = (
                f"{variant.accelerator.value} build; the target is a {host.accelerator.value} host ({host.describe()})"
            )
        elif host.os not in variant.os:
            why = f"no {host.os} build (builds for {', '.join(variant.os)})"
        elif host.arch not in variant.arch:
            why = f"no {host.arch} build (builds for {', '.join(variant.arch)})"
        elif (
            variant.min_compute_capability is not None
            and host.min_compute_capability is not None
            and host.min_compute_capability < variant.min_compute_capability
        ):
            why = (
                f"needs compute capability {variant.min_compute_capability}; "
                f"{host.gpus[0].name} has {host.min_compute_capability}"
            )
        if why is None:
            usable.append(variant)
        else:
            reject(f"variant {variant.name}: {why}", None, variant.name)  # type: ignore[operator]
    return usable


def candidate_versions(
    engine: Engine,
    support: Support,
    variant: Variant,
    request: PlanRequest,
    host: Host,
    reject: object,
    notes: dict[tuple[str, Version], str],
) -> Iterator[tuple[Version, list[str]]]:
    """Versions to try, best first, each with the soft reasons --force would override.

    The requested one, or the known-good pins (the family's, else the engine's above the floor);
    a release the host's GPUs cannot run gives way to the newest before the limit. ``notes``
    collects why a version was chosen when it is not a family pin.
    """
    floor = support.min_version
    if request.version:
        version = Version(request.version)
        if variant.versions and version not in variant.versions:
            reject(  # type: ignore[operator]
                f"{variant.package} has no release {version} (it exists for {variant.versions})",
                str(version),
                variant.name,
            )
            return
        limit = _limit(host, variant, version)
        if limit:
            reject(limit, str(version), variant.name)  # type: ignore[operator]
            return
        soft: list[str] = []
        if floor is None:
            soft.append(f"{engine.name} has no release known to support {support.family}")
        elif version < floor:
            soft.append(
                f"{engine.name} {version} cannot run {support.family}: the architecture was added in "
                f"{engine.name} {floor} ({support.evidence}). Use {engine.name}>={floor}"
                + (f" (known good: {support.known_good[-1]})" if support.known_good else "")
            )
        yield version, soft
        return
    candidates = [(v, "") for v in reversed(support.known_good)]
    if not candidates and floor is not None:
        note = (
            f"known good for {engine.name} ({engine.known_good_evidence}), not yet smoke-tested with {support.family}"
        )
        candidates = [(v, note) for v in reversed(engine.known_good) if v >= floor]
    candidates = [(v, n) for v, n in candidates if not variant.versions or v in variant.versions]
    if not candidates:
        reject(  # type: ignore[operator]
            f"no known-good {engine.name} version for {support.family} ({variant.name}) in matrix.toml; "
            f"pass --version V (floor {floor})",
            None,
            variant.name,
        )
        return
    tried: set[Version] = set()
    for version, note in candidates:
        limit = _limit(host, variant, version)
        if limit:
            reject(limit, str(version), variant.name)  # type: ignore[operator]
            older = _before_limit(host, variant, version, floor)
            if older is None or older in tried:
                continue
            version, note = (
                older,
                (
                    f"{engine.name} {older}: the newest release built for "
                    f"{host.gpus[0].name} (compute capability {host.min_compute_capability}); "
                    "not yet smoke-tested"
                ),
            )
        tried.add(version)
        if note:
            notes[(engine.name, version)] = note
        yield version, []


def _before_limit(host: Host, variant: Variant, version: Version, floor: Version | None) -> Version | None:
    """The last release before the hardware limit that blocks ``version``, if it is usable."""
    for limit in variant.limits:
        last = limit.last_version
        usable = last is not None and (floor is None or last >= floor) and _limit(host, variant, last) is None
        if version in limit.versions and usable:
            return last
    return None


def _limit(host: Host, variant: Variant, version: Version) -> str | None:
    """Why this release of the variant cannot run on the host's GPUs, if it cannot."""
    cc = host.min_compute_capability
    for limit in variant.limits:
        if cc is not None and version in limit.versions and cc < limit.min_compute_capability:
            return (
                f"needs compute capability {limit.min_compute_capability}, {host.gpus[0].name} has {cc}: {limit.reason}"
            )
    return None
