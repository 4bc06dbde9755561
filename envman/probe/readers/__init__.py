"""Readers: what one released artifact of an engine says it can load.

A reader picks one file of a release (the smallest that holds the engine's model table),
and returns every name in that table. Readers register here under the key that
``matrix.toml`` names in ``engines.<engine>.probe``; adding one is one decorated function
in a new module imported at the bottom of this file.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envman.files import atomic_write
from envman.pypi import Release, ReleaseFile


class Vocabulary(enum.StrEnum):
    """Which of a family's name lists a reader's names are compared with."""

    HF_ARCHITECTURES = "hf_architectures"
    GGUF_ARCHITECTURES = "gguf_architectures"
    MODEL_TYPES = "model_types"


@dataclass(frozen=True)
class Catalog:
    """Every name one artifact knows, and where in the artifact they were read."""

    names: frozenset[str]
    source: str


ChooseArtifact = Callable[[Release], ReleaseFile | None]
ReadArtifact = Callable[[Path], Catalog]


@dataclass(frozen=True)
class Reader:
    key: str
    vocabulary: Vocabulary
    choose: ChooseArtifact
    read: ReadArtifact
    claim: str  # "{source} {claim} {name}", e.g. "registers"
    revision: int = 1  # bump when ``read`` changes, so cached catalogs are read again

    def cache_path(self, artifact: Path) -> Path:
        return artifact.with_name(f"{artifact.name}.{self.key}-r{self.revision}.json")

    def cached(self, artifact: Path) -> Catalog | None:
        path = self.cache_path(artifact)
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return Catalog(names=frozenset(data["names"]), source=data["source"])

    def store(self, artifact: Path, catalog: Catalog) -> None:
        path = self.cache_path(artifact)
        text = json.dumps({"source": catalog.source, "names": sorted(catalog.names)}, indent=0)
        atomic_write(path, text)


READERS: dict[str, Reader] = {}


def reader(
    key: str, *, vocabulary: Vocabulary, choose: ChooseArtifact, claim: str, revision: int = 1
) -> Callable[[ReadArtifact], ReadArtifact]:
    """Register the decorated function as the reader ``key``."""

    def register(read: ReadArtifact) -> ReadArtifact:
        READERS[key] = Reader(key, vocabulary, choose, read, claim, revision)
        return read

    return register


def load_readers() -> dict[str, Reader]:
    """Every reader: each module of this package (a new reader is one new file here, nothing to
    register), then plugins in the ``envman.probe_readers`` entry-point group, as engines are."""
    import importlib
    import pkgutil
    from importlib.metadata import entry_points

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    for entry in entry_points(group="envman.probe_readers"):
        entry.load()  # the module registers its readers with @reader on import
    return READERS
