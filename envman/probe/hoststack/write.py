"""Write probed host requirements into ``matrix.toml`` (``host_requirements.E.V.VERSION``),
keeping its comments and layout, the way :mod:`envman.probe.write` writes floors."""

from __future__ import annotations

from pathlib import Path

import tomlkit
from tomlkit.items import AoT, Table

from envman.errors import ConfigError
from envman.files import atomic_write
from envman.probe.hoststack.stack import BuildStack, HostProbe


def write_host_requirements(matrix: Path, probe: HostProbe) -> int:
    """Set one table per build of ``probe``; returns how many were written."""
    document = tomlkit.parse(matrix.read_text(encoding="utf-8"))
    root = _super(document, "host_requirements", matrix)
    engine = _super(root, probe.engine, matrix)
    variant = _super(engine, probe.variant, matrix)
    for build in probe.builds:
        variant[build.version] = _table(build)
    atomic_write(matrix, tomlkit.dumps(document))
    return len(probe.builds)


def _table(build: BuildStack) -> Table:
    table = tomlkit.table()
    table["wheel"] = build.wheel
    table["manylinux"] = build.manylinux
    if build.cuda_runtime is not None:
        table["cuda_runtime"] = build.cuda_runtime
    table["sonames"] = list(build.sonames)
    if build.glibc is not None:
        table["glibc"] = build.glibc
    if build.torch is not None:
        table["torch"] = build.torch
    table["evidence"] = build.evidence
    kernels = AoT([])
    for item in build.kernels:
        entry = tomlkit.table()
        entry["library"] = item.library
        entry["sass"] = list(item.sass)
        entry["ptx"] = list(item.ptx)
        kernels.append(entry)
    table["kernels"] = kernels
    return table


def _super(parent: tomlkit.TOMLDocument | Table, key: str, matrix: Path) -> Table:
    if key not in parent:
        parent[key] = tomlkit.table(is_super_table=True)
    section = parent[key]
    if not isinstance(section, Table):
        raise ConfigError(f"{matrix}: {key} is not a table")
    return section
