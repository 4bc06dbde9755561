"""Probe one family on one engine: which releases can load it, read from the releases.

Nothing is installed or run. For each release examined, the reader's artifact is
downloaded once (checked against PyPI's sha256) under ``paths.artifacts_dir()``, and the
names the reader finds are cached beside it, so probing another family costs nothing.
"""

from __future__ import annotations

import datetime
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envman import paths, pypi
from envman.errors import UsageError
from envman.matrix.schema import Engine, Family
from envman.probe.readers import Catalog, Reader, load_readers
from envman.probe.search import support_window
from envman.report import NullReporter, Reporter


@dataclass(frozen=True)
class ProbeTarget:
    """A family's names in the vocabulary of one engine's reader."""

    family: str
    engine: str
    package: str
    reader: str
    names: tuple[str, ...]

    @classmethod
    def of(cls, family: Family, engine: Engine) -> ProbeTarget:
        reader = reader_for(engine.probe)
        names: tuple[str, ...] = getattr(family, reader.vocabulary.value)
        if not names:
            raise UsageError(
                f"family {family.name} has no {reader.vocabulary.value}, which {engine.name}'s reader needs",
                hint=f"Add families.{family.name}.{reader.vocabulary.value} to the matrix.",
            )
        return cls(family.name, engine.name, engine.package, reader.key, names)


@dataclass(frozen=True)
class Examined:
    version: Version
    date: str
    artifact: str
    supported: bool
    matched: str | None  # the family name the artifact has, if any
    source: str  # where in the artifact the reader looked


@dataclass(frozen=True)
class ProbeResult:
    target: ProbeTarget
    min_version: Version | None  # None: no release examined supports it
    removed_in: Version | None  # first release after support that lacks it again
    evidence: str
    examined: tuple[Examined, ...]  # oldest first
    releases: int  # how many releases were in range


def reader_for(key: str) -> Reader:
    readers = load_readers()
    try:
        return readers[key]
    except KeyError:
        close = difflib.get_close_matches(key, readers, n=3)
        hint = f"Did you mean {', '.join(close)}?" if close else f"Known readers: {', '.join(sorted(readers))}."
        raise UsageError(f"no probe reader named {key!r}", hint=hint) from None


def catalog(reader: Reader, package: str, release: pypi.Release, reporter: Reporter | None = None) -> Catalog:
    """Every name the reader finds in ``release`` (downloaded and read once, then cached)."""
    file = reader.choose(release)
    if file is None:
        return Catalog(frozenset(), f"no {reader.key} artifact")
    artifact = paths.artifacts_dir() / package / file.filename
    cached = reader.cached(artifact)
    if cached is not None:
        return cached
    pypi.download(file, artifact.parent, reporter)
    found = reader.read(artifact)
    reader.store(artifact, found)
    return found


def probe(
    target: ProbeTarget,
    *,
    versions: SpecifierSet | None = None,
    reporter: Reporter | None = None,
    releases: Sequence[pypi.Release] | None = None,
    today: datetime.date | None = None,
) -> ProbeResult:
    """The first release of ``target.package`` that knows the family, with evidence."""
    reporter = reporter or NullReporter()
    reader = reader_for(target.reader)
    if releases is None:
        with reporter.status(f"reading the release list of {target.package}"):
            releases = pypi.releases(target.package)
    in_range = [
        r
        for r in releases
        if (versions is None or versions.contains(r.version, prereleases=True)) and reader.choose(r) is not None
    ]
    if not in_range:
        spec = f" in {versions}" if versions is not None else ""
        raise UsageError(f"{target.package} has no release{spec} with an artifact the {reader.key} reader can read")

    seen: dict[int, Examined] = {}

    def supports(release: pypi.Release) -> bool:
        found = catalog(reader, target.package, release, reporter)
        matched = next((name for name in target.names if name in found.names), None)
        file = reader.choose(release)
        artifact = file.filename if file else "?"
        seen[in_range.index(release)] = Examined(
            release.version, release.date, artifact, matched is not None, matched, found.source
        )
        reporter.detail(f"{artifact}: {'has' if matched else 'lacks'} {matched or ' / '.join(target.names)}")
        return matched is not None

    window = support_window(in_range, supports)
    examined = tuple(seen[i] for i in sorted(seen))
    first = seen[window.first] if window.first is not None else None
    before = seen.get(window.first - 1) if window.first else None
    after = seen.get(window.last + 1) if window.last is not None else None
    evidence = _evidence(target, reader, first, before, after, versions, examined, today or datetime.date.today())
    return ProbeResult(
        target=target,
        min_version=first.version if first else None,
        removed_in=after.version if after else None,
        evidence=evidence,
        examined=examined,
        releases=len(in_range),
    )


def _evidence(
    target: ProbeTarget,
    reader: Reader,
    first: Examined | None,
    before: Examined | None,
    after: Examined | None,
    versions: SpecifierSet | None,
    examined: tuple[Examined, ...],
    today: datetime.date,
) -> str:
    stamp = f"(envman probe, {today.isoformat()})"
    if first is None:
        newest = examined[-1]
        names = " / ".join(target.names)
        return f"{newest.artifact}: {newest.source} has no {names}, nor has any release examined {stamp}"
    text = f"{first.artifact}: {first.source} {reader.claim} {first.matched}"
    if before is not None:
        text += f"; {before.artifact} does not"
    elif versions is not None:
        text += f"; the earliest release in {versions}"
    else:
        text += "; the earliest release on the index"
    if after is not None:
        text += f"; removed again in {after.artifact}"
    return f"{text} {stamp}"
