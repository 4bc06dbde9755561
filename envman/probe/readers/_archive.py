"""Reading members of sdists (.tar.gz) and wheels (.whl, a zip) without unpacking them,
and picking which file of a release to download."""

from __future__ import annotations

import ast
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from envman.pypi import Release, ReleaseFile

Wanted = Callable[[str], bool]


def members(artifact: Path, wanted: Wanted) -> Iterator[tuple[str, bytes]]:
    """``(path, content)`` of each member ``wanted`` accepts.

    Paths are relative to the project root: an sdist's top folder (``vllm-0.8.0/``) is
    taken off, so one reader reads sdists and wheels alike.
    """
    if artifact.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(artifact) as archive:
            for info in archive.infolist():
                name = _relative(info.filename, artifact)
                if not info.is_dir() and wanted(name):
                    yield name, archive.read(info)
        return
    with tarfile.open(artifact, "r:*") as archive:
        for member in archive:
            name = _relative(member.name, artifact)
            if member.isfile() and wanted(name):
                extracted = archive.extractfile(member)
                if extracted is not None:
                    yield name, extracted.read()


def names(artifact: Path) -> list[str]:
    """Every file path in ``artifact`` (relative to the project root)."""
    if artifact.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(artifact) as archive:
            return [_relative(n, artifact) for n in archive.namelist()]
    with tarfile.open(artifact, "r:*") as archive:
        return [_relative(m.name, artifact) for m in archive if m.isfile()]


def _relative(name: str, artifact: Path) -> str:
    if artifact.name.endswith((".whl", ".zip")):
        return name
    _, _, rest = name.partition("/")
    return rest


def parse(source: bytes, name: str) -> ast.Module | None:
    """The module's syntax tree, or None for a file this Python cannot parse."""
    try:
        return ast.parse(source, filename=name)
    except (SyntaxError, ValueError):
        return None


def string_keys(node: ast.Dict) -> set[str]:
    return {key.value for key in node.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)}


# -- choosing the file to download ------------------------------------------------------------


def sdist(release: Release) -> ReleaseFile | None:
    return next((f for f in release.files if f.packagetype == "sdist"), None)


def pure_wheel(release: Release) -> ReleaseFile | None:
    """The ``py3-none-any`` wheel, else the sdist."""
    wheel = next((f for f in release.files if f.filename.endswith("-none-any.whl")), None)
    return wheel or sdist(release)


def python_sources(release: Release) -> ReleaseFile | None:
    """For reading Python files: the pure wheel, else the sdist, else the smallest wheel."""
    return pure_wheel(release) or smallest_wheel(release)


def smallest_wheel(release: Release) -> ReleaseFile | None:
    """Any wheel will do when only its Python files are read: take the smallest."""
    wheels = [f for f in release.files if f.filename.endswith(".whl")]
    if wheels:
        return min(wheels, key=lambda f: f.size)
    return sdist(release)


def linux_wheel(release: Release, python: str = "cp311") -> ReleaseFile | None:
    """The manylinux x86_64 wheel for ``python``, else any manylinux x86_64 wheel."""
    linux = [f for f in release.files if f.filename.endswith(".whl") and "manylinux" in f.filename]
    linux = [f for f in linux if "x86_64" in f.filename]
    for wheel in linux:
        if f"-{python}-" in wheel.filename:
            return wheel
    return min(linux, key=lambda f: f.size) if linux else None
