"""LMDeploy: the HF architectures its two backends map to an implementation.

The PyTorch engine's table is ``MODULE_MAP`` in ``lmdeploy/pytorch/models/module_map.py``
(filled by ``MODULE_MAP.update({...})`` blocks); TurboMind's is ``SUPPORTED_ARCHS`` in
``lmdeploy/turbomind/supported_models.py``. An architecture in either counts. Newer
releases keep removed ones in ``REMOVED_MODEL_MAP``, which is not read.
Any wheel holds the same Python files, so the smallest (a Windows one) is downloaded.
"""

from __future__ import annotations

import ast
from pathlib import Path

from envman.probe.readers import Catalog, Vocabulary, reader
from envman.probe.readers._archive import members, parse, smallest_wheel, string_keys

_TABLES = {
    "lmdeploy/pytorch/models/module_map.py": "MODULE_MAP",
    "lmdeploy/turbomind/supported_models.py": "SUPPORTED_ARCHS",
}


@reader("lmdeploy-archs", vocabulary=Vocabulary.HF_ARCHITECTURES, choose=smallest_wheel, claim="maps")
def read_archs(artifact: Path) -> Catalog:
    found: set[str] = set()
    sources: list[str] = []
    for name, content in members(artifact, lambda path: path in _TABLES):
        tree = parse(content, name)
        names = table_keys(tree, _TABLES[name]) if tree else set()
        if names:
            found |= names
            sources.append(f"{name} {_TABLES[name]}")
    return Catalog(frozenset(found), " or ".join(sorted(sources)) or "no architecture table")


def table_keys(tree: ast.Module, table: str) -> set[str]:
    """Keys put into the module-level dict ``table`` by assignment or ``table.update(...)``."""
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == table for t in node.targets):
            keys |= _dict_keys(node.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == table
        ):
            for argument in node.args:
                keys |= _dict_keys(argument)
            keys |= {k.arg for k in node.keywords if k.arg}
    return keys


def _dict_keys(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Dict):
        return string_keys(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {k.arg for k in node.keywords if k.arg}
    return set()
