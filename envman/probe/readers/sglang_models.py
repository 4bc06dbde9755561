"""SGLang: the classes its model modules export as ``EntryClass``.

SGLang registers each class of ``sglang/srt/models/*.py`` named by the module's
``EntryClass`` (one class or a list) under the class's own name, which is the HF
architecture it serves.
"""

from __future__ import annotations

import ast
from pathlib import Path

from envman.probe.readers import Catalog, Vocabulary, reader
from envman.probe.readers._archive import members, parse, python_sources

_MODELS = "sglang/srt/models/"


@reader(
    "sglang-models",
    vocabulary=Vocabulary.HF_ARCHITECTURES,
    choose=python_sources,
    claim="exports EntryClass",
    revision=2,
)
def read_entry_classes(artifact: Path) -> Catalog:
    found: set[str] = set()
    for name, content in members(artifact, _is_model_module):
        tree = parse(content, name)
        if tree is not None:
            found |= _entry_classes(tree)
    return Catalog(frozenset(found), f"{_MODELS}*.py")


def _is_model_module(path: str) -> bool:
    # sdists of some releases keep the package under python/
    return f"/{_MODELS}" in f"/{path}" and path.endswith(".py")


def _entry_classes(tree: ast.Module) -> set[str]:
    classes: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EntryClass" for t in node.targets):
            for item in ast.walk(node.value):
                if isinstance(item, ast.Name):
                    classes.add(item.id)
                elif isinstance(item, ast.Attribute):
                    classes.add(item.attr)
    return classes
