"""Combinations: engine × version × variant, the unit envman locks, builds, smokes and images.

The matrix's known-good versions (per family, else the engine's) give the committed set;
:func:`select` is the one place a command's ``MODEL/--family/--engine/--version/--variant``
selection is checked and turned into combinations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from envman.errors import UsageError
from envman.matrix.catalog import resolve_model
from envman.matrix.schema import Matrix


@dataclass(frozen=True, order=True)
class Combination:
    engine: str
    version: Version
    variant: str
    frontend: str = ""  # "xinference==1.4.0": the environment holds the frontend too

    def __str__(self) -> str:
        under = f" under {self.frontend}" if self.frontend else ""
        return f"{self.engine} {self.version} ({self.variant}){under}"


def frontend_known_good(matrix: Matrix, *, engine: str | None = None, version: str | None = None) -> list[Combination]:
    """Frontend × engine pairs the matrix holds known good (a drive's ``known_good``), lockable here."""
    found: set[Combination] = set()
    for frontend in matrix.frontends.values():
        for fv in frontend.known_good:
            for drive in frontend.drives:
                if fv not in drive.versions or (engine and drive.engine != engine):
                    continue
                for ev in drive.known_good:
                    if version and ev != Version(version):
                        continue
                    for var in matrix.engines[drive.engine].variants.values():
                        fvar = next((v for v in frontend.variants.values() if v.accelerator is var.accelerator), None)
                        if fvar is not None and fvar.lockable and var.lockable:
                            found.add(Combination(drive.engine, ev, var.name, f"{frontend.name}=={fv}"))
    return sorted(found)


def known_good(
    matrix: Matrix,
    *,
    families: Iterable[str] | None = None,
    engine: str | None = None,
    version: str | None = None,
    variant: str | None = None,
) -> list[Combination]:
    """The known-good combinations the matrix names (or the selected ones), lockable here."""
    found: set[Combination] = set()
    wanted = set(families) if families is not None else None
    for family in matrix.families.values():
        if wanted is not None and family.name not in wanted:
            continue
        for name, support in family.engines.items():
            if engine and name != engine:
                continue
            eng = matrix.engines[name]
            versions = support.known_good or tuple(
                v for v in eng.known_good if support.min_version is not None and v >= support.min_version
            )
            for v in versions:
                if version and v != Version(version):
                    continue
                for var in eng.variants.values():
                    if variant and var.name != variant:
                        continue
                    if var.lockable and (not var.versions or v in var.versions):
                        found.add(Combination(name, v, var.name))
            for var in eng.variants.values():  # a variant's older CUDA lines, for the families they run
                for line in var.lines:
                    if (version and line != Version(version)) or (variant and var.name != variant):
                        continue
                    if var.lockable and support.min_version is not None and line >= support.min_version:
                        found.add(Combination(name, line, var.name))
    return sorted(found)


def select(
    matrix: Matrix,
    *,
    model: str | None = None,
    family: str | None = None,
    engine: str | None = None,
    version: str | None = None,
    variant: str | None = None,
    frontends: bool = False,
) -> tuple[list[Combination], bool]:
    """The known-good combinations a command selects (names checked), and whether that is all of them.

    ``frontends``: the known-good frontend × engine pairs too (locks; images do not have them yet).
    """
    families = [resolve_model(matrix, model)[0].family] if model else None
    if family:
        if family not in matrix.families:
            raise UsageError(f"unknown family {family!r}", hint="`envman matrix` lists the families")
        families = [family]
    if engine and engine not in matrix.engines:
        raise UsageError(f"unknown engine {engine!r}", hint=f"engines: {', '.join(matrix.engines)}")
    if variant and engine and variant not in matrix.engines[engine].variants:
        raise UsageError(
            f"{engine} has no variant {variant!r}", hint=f"variants: {', '.join(matrix.engines[engine].variants)}"
        )
    if version:
        try:
            Version(version)
        except InvalidVersion:
            raise UsageError(f"{version!r} is not a version") from None
    selected = known_good(matrix, families=families, engine=engine, version=version, variant=variant)
    if frontends and families is None:  # a frontend pair is not one family's
        selected += [
            c
            for c in frontend_known_good(matrix, engine=engine, version=version)
            if not variant or c.variant == variant
        ]
    return selected, not (model or family or engine or version or variant)
