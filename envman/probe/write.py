"""Write a probed floor back into ``matrix.toml``, keeping its comments and layout."""

from __future__ import annotations

from pathlib import Path

import tomlkit
from tomlkit.container import Container
from tomlkit.items import InlineTable, Table

from envman.errors import ConfigError
from envman.files import atomic_write
from envman.probe.floor import ProbeResult

_Section = Container | Table | InlineTable


def write_floor(matrix: Path, result: ProbeResult) -> None:
    """Set ``families.<family>.engines.<engine>.min_version`` and ``.evidence`` in ``matrix``.

    The engine's table is created if the family has none yet. When no release supports the
    family, ``min_version`` is removed (the matrix reads a missing floor as "none yet").
    """
    target = result.target
    document = tomlkit.parse(matrix.read_text(encoding="utf-8"))
    families = _section(document, "families", matrix, "families")
    family = _section(families, target.family, matrix, f"families.{target.family}")
    engines = _section(family, "engines", matrix, f"families.{target.family}.engines", create=True)
    if target.engine not in engines:
        engines[target.engine] = _new_support(result)
    else:
        support = _section(engines, target.engine, matrix, f"families.{target.family}.engines.{target.engine}")
        if result.min_version is None:
            support.pop("min_version", None)
        else:
            support["min_version"] = str(result.min_version)
        support["evidence"] = result.evidence
    _replace(matrix, tomlkit.dumps(document))


def _new_support(result: ProbeResult) -> Table:
    support = tomlkit.table()
    if result.min_version is not None:
        support["min_version"] = str(result.min_version)
    support["evidence"] = result.evidence
    support.add(tomlkit.nl())
    return support


def _section(parent: _Section, key: str, matrix: Path, where: str, create: bool = False) -> _Section:
    if key not in parent:
        if not create:
            raise ConfigError(f"{matrix}: {where} is missing", hint=f"Add a [{where}] table first.")
        parent[key] = tomlkit.table()
    section = parent[key]
    if not isinstance(section, (Table, InlineTable)):
        raise ConfigError(f"{matrix}: {where} is not a table")
    return section


def _replace(path: Path, text: str) -> None:
    atomic_write(path, text)  # keeps matrix.toml's mode; mkstemp alone made it 0600
