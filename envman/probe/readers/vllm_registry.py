"""vLLM: the architectures its model registry maps to an implementation.

The table has moved: ``vllm/model_executor/model_loader.py`` (0.1–0.2),
``vllm/model_executor/models/__init__.py`` (to 0.6.2), ``models/registry.py`` (0.6.3 on).
Entries map an HF architecture to ``(module, class)`` (or, early on, to the class itself).
Tables whose values are plain strings are not registrations: ``_PREVIOUSLY_SUPPORTED_MODELS``
(newer releases) maps a removed architecture to the last version that had it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from envman.probe.readers import Catalog, Vocabulary, reader
from envman.probe.readers._archive import members, parse, sdist

_TABLE_FILES = (
    "vllm/model_executor/models/registry.py",
    "vllm/model_executor/models/__init__.py",
    "vllm/model_executor/model_loader.py",
)


@reader("vllm-registry", vocabulary=Vocabulary.HF_ARCHITECTURES, choose=sdist, claim="registers")
def read_registry(artifact: Path) -> Catalog:
    found: set[str] = set()
    sources: list[str] = []
    for name, content in members(artifact, lambda path: path in _TABLE_FILES):
        tree = parse(content, name)
        registered = _registered(tree) if tree else set()
        if registered:
            found |= registered
            sources.append(name)
    return Catalog(frozenset(found), " and ".join(sorted(sources)) or "no model registry")


def _registered(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if not isinstance(value, ast.Dict):
            continue
        for key, entry in zip(value.keys, value.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                continue  # a ``**other_table`` merge
            if isinstance(entry, (ast.Tuple, ast.Name, ast.Attribute)):
                names.add(key.value)
    return names
